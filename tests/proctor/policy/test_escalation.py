"""How escalation settings read back: what `policy explain` prints of standing grants."""

from __future__ import annotations

import pytest

from proctor.models import EscalationSettings
from proctor.policy.escalation import grant_summary
from proctor.policy.schema import format_duration, parse_duration


@pytest.mark.parametrize(
    "seconds, text",
    [(28800.0, "8h"), (90.0, "90s"), (120.0, "2m"), (2592000.0, "30d"), (1209600.0, "2w")],
)
def test_durations_read_back_as_policy_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_explain_names_the_longest_grant_and_nothing_when_none_is_allowed() -> None:
    settings = EscalationSettings(approvers=("a@x.io",))
    assert grant_summary(settings) == ""
    allowed = settings.model_copy(update={"grant_max_seconds": 8 * 3600.0})
    assert grant_summary(allowed) == ", grants: up to 8h"
