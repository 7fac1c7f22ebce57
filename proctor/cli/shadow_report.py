"""What `proctor policy shadow-report` prints: per shadow rule, how often it agreed with the
enforced decision and, where it did not, which effects differed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import click

from proctor.models import Frozen
from proctor.policy.schema import parse_duration
from proctor.stores.shadow_decisions import ShadowCount


class Difference(Frozen):
    enforced: str
    shadow: str
    count: int


class RuleReport(Frozen):
    rule: str
    agree: int
    disagree: int
    differences: tuple[Difference, ...]
    """enforced → shadow effect pairs that differed, most frequent first."""


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """`--since`: a duration back from now (24h, 7d) or a timestamp (ISO 8601; UTC if no
    zone); a click.BadParameter naming the value otherwise."""
    if value is None:
        return None
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value[:80]!r} is neither a duration (24h, 7d) nor a timestamp "
            "(2026-12-01 or 2026-12-01T09:00:00Z)",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rule_reports(counts: Iterable[ShadowCount]) -> list[RuleReport]:
    """The counts grouped by shadow rule, rules with disagreements first."""
    by_rule: dict[str, list[ShadowCount]] = {}
    for count in counts:
        by_rule.setdefault(count.rule, []).append(count)
    reports = [
        RuleReport(
            rule=rule,
            agree=sum(c.count for c in rows if c.agree),
            disagree=sum(c.count for c in rows if not c.agree),
            differences=tuple(
                Difference(enforced=c.enforced.value, shadow=c.shadow.value, count=c.count)
                for c in sorted(rows, key=lambda c: -c.count)
                if not c.agree
            ),
        )
        for rule, rows in by_rule.items()
    ]
    return sorted(reports, key=lambda r: (-r.disagree, r.rule))


def render(reports: list[RuleReport], since: datetime | None) -> list[str]:
    """One line per rule, one indented line per differing pair of effects."""
    period = f"since {since.isoformat(timespec='seconds')}" if since else "all recorded"
    if not reports:
        return [f"no shadow decisions ({period})"]
    lines = [f"shadow decisions ({period}):"]
    for report in reports:
        lines.append(f"{report.rule}: {report.disagree} disagree, {report.agree} agree")
        lines.extend(f"  {d.enforced} -> {d.shadow}: {d.count}" for d in report.differences)
    return lines
