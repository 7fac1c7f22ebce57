"""The timeline read from recorded histories (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from proctor.history.timeline import (
    StepKind,
    describe_event,
    name_audit_steps,
    timeline,
)

HISTORIES = Path(__file__).parents[2] / "histories"


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "path",
    sorted(p for p in HISTORIES.glob("*.json") if not p.stem.startswith("workflow_ids")),
    ids=lambda p: p.stem,
)
def test_every_recorded_history_reads_as_a_timeline(path: Path) -> None:
    steps = timeline(load(path.stem))
    assert steps[0].kind is StepKind.STARTED
    assert [s.event_id for s in steps] == sorted(s.event_id for s in steps)
    audited = [s.audit_seq for s in steps if s.kind is StepKind.AUDIT]
    assert audited and all(isinstance(seq, int) for seq in audited)
    assert not any("returned" in s.text and s.text.startswith("proctor.") for s in steps), (
        "every Proctor activity has a readable description"
    )


def test_timeout_path_reads_in_order() -> None:
    """Audit writes are local activities: their markers carry the receipt, not the event, so
    the pure timeline names them by row (`proctor history` names them from the ledger)."""
    texts = [s.text for s in timeline(load("timed_out"))]
    assert texts[1:] == [
        "the agent's handler asks for permission to run",
        "identity verified: agent-c83e91a18a (tester, owner owner@example.com), trust 100, "
        "status active",
        "policy decided ESCALATE by rule refunds-need-approval (testers.yaml, policy "
        "c38cdd7a4c39dcd4): Refunds move money; approvers alice@example.com, bob@example.com, "
        "quorum 1, timeout 1d then deny",
        "audited a step as row #28",
        "audited a step as row #29",
        "approvers notified: skipped (Slack is not configured (set PROCTOR_SLACK_BOT_TOKEN))",
        "timer fired after 1d",
        "audited a step as row #30",
        "audited a step as row #32",
        "outcome TIMED_OUT (rule refunds-need-approval, policy c38cdd7a4c39dcd4)",
    ]


def test_refusals_and_rate_limits_are_named() -> None:
    refused = [s.text for s in timeline(load("identity_refused"))]
    assert any(t.startswith("identity REFUSED: ") for t in refused)
    limited = [s.text for s in timeline(load("rate_limited"))]
    assert any("rate limit exceeded: actions_per_minute" in t for t in limited)
    slack = [s.text for s in timeline(load("slack_approved"))]
    assert "approvers notified: 3 Slack message(s)" in slack


def test_grants_and_delegation_are_named() -> None:
    made = [s.text for s in timeline(load("grant_made"))]
    assert any(t.startswith("standing grant g-") and "made (audited as row #" in t for t in made)
    used = [s.text for s in timeline(load("grant_used"))]
    assert any("policy decided ALLOW by rule grant:g-" in t for t in used), used
    (started, *_) = timeline(load("delegated"))
    assert " on behalf of alice@example.com → agent:agent-" in started.text
    assert started.text.endswith("(delegated)")


def test_describe_event_names_type_and_step() -> None:
    history = load("timed_out")
    assert describe_event(history, 6) == "event 6 ACTIVITY_TASK_SCHEDULED proctor.judge_request"
    assert describe_event(history, 25) == "event 25 TIMER_FIRED: timer fired after 1d"
    assert describe_event(history, 999) == "event 999 (not in the history)"


def test_audit_steps_the_history_cannot_name_are_named_from_the_ledger() -> None:
    steps = timeline(load("timed_out"))
    named = name_audit_steps(steps, {28: "decided", 30: "timed_out", 999: "unused"})
    texts = [s.text for s in named if s.kind is StepKind.AUDIT]
    assert texts == [
        "audited decided as row #28",
        "audited a step as row #29",
        "audited timed_out as row #30",
        "audited a step as row #32",
    ]
    assert [s for s in named if s.kind is not StepKind.AUDIT] == [
        s for s in steps if s.kind is not StepKind.AUDIT
    ]
    assert "audited" not in named[0].model_dump(mode="json"), "told in the text, not a field"


def test_a_step_the_history_names_keeps_its_name() -> None:
    steps = [s for s in timeline(load("reinstated")) if s.kind is StepKind.AUDIT]
    named = [s for s in steps if s.audited is not None]
    assert named, [s.text for s in steps]
    ledger = {s.audit_seq: "something_else" for s in named if s.audit_seq is not None}
    assert name_audit_steps(named, ledger) == named
