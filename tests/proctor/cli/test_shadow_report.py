"""`policy shadow-report`'s reading of --since and its grouping of the counts by shadow rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import click
import pytest

from proctor.cli.shadow_report import parse_since, render, rule_reports
from proctor.models import Effect
from proctor.stores.shadow_decisions import ShadowCount
from tests.helpers.cli import run

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, None),
        ("24h", NOW - timedelta(hours=24)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        (
            "2026-12-01T08:00:00+02:00",
            datetime(2026, 12, 1, 8, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_since_is_a_duration_back_from_now_or_a_timestamp_utc_unless_zoned(
    given: str | None, expected: datetime | None
) -> None:
    assert parse_since(given, NOW) == expected


@pytest.mark.parametrize("given", ["yesterday", "-5m", "0h", "2026-13-01"])
def test_a_since_that_is_neither_names_itself(given: str) -> None:
    with pytest.raises(click.BadParameter, match=f"'{given}' is neither a duration"):
        parse_since(given, NOW)


def count(rule: str, enforced: Effect, shadow: Effect, n: int) -> ShadowCount:
    return ShadowCount(
        rule=rule, enforced=enforced, shadow=shadow, agree=enforced is shadow, count=n
    )


def test_rules_that_disagree_come_first_with_their_differing_effects_most_frequent_first() -> None:
    reports = rule_reports(
        [
            count("a-quiet", Effect.ALLOW, Effect.ALLOW, 9),
            count("b-loud", Effect.ALLOW, Effect.DENY, 2),
            count("b-loud", Effect.ALLOW, Effect.ALLOW, 1),
            count("b-loud", Effect.ESCALATE, Effect.DENY, 5),
        ]
    )
    assert render(reports, NOW) == [
        "shadow decisions (since 2026-12-03T09:00:00+00:00):",
        "b-loud: 7 disagree, 1 agree",
        "  escalate -> deny: 5",
        "  allow -> deny: 2",
        "a-quiet: 0 disagree, 9 agree",
    ]
    assert render([], None) == ["no shadow decisions (all recorded)"]


def test_policy_explain_prints_the_shadow_decision_and_marks_shadow_rules(tmp_path: Path) -> None:
    (tmp_path / "enforced.yaml").write_text("permissions: {allow: ['refund:*']}\n")
    (tmp_path / "trial.yaml").write_text(
        "mode: shadow\npermissions: {deny: [{action: 'refund:*', id: trial-no-refunds}]}\n"
    )
    done = run(["policy", "explain", "a1", "refund:x", "--dir", str(tmp_path)], {}, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ALLOW by enforced:allow:refund:*")
    assert lines[1] == (
        "  shadow: DENY by trial-no-refunds (disagrees; shadow rules applying: trial-no-refunds)"
    )
    assert any(line.endswith("matches (shadow)") and "trial-no-refunds" in line for line in lines)
