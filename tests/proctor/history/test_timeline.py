"""The timeline read from recorded histories (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from proctor.history.timeline import describe_event, timeline

HISTORIES = Path(__file__).parents[2] / "histories"


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_every_recorded_history_reads_as_a_timeline(path: Path) -> None:
    steps = timeline(load(path.stem))
    assert steps[0].kind == "started"
    assert [s.event_id for s in steps] == sorted(s.event_id for s in steps)
    audited = [s.audit_seq for s in steps if s.kind == "audit"]
    assert audited and all(isinstance(seq, int) for seq in audited)
    assert not any("returned" in s.text and s.text.startswith("proctor.") for s in steps), \
        "every Proctor activity has a readable description"


def test_timeout_path_reads_in_order() -> None:
    texts = [s.text for s in timeline(load("timed_out"))]
    assert texts[1:] == [
        "the agent's handler asks for permission to run",
        "identity verified: agent-2426ec149f (tester, owner owner@example.com), trust 100, "
        "status active",
        "policy decided ESCALATE by rule refunds-need-approval (testers.yaml, policy "
        "83874f4a969c0ab4): Refunds move money; approvers alice@example.com, bob@example.com, "
        "quorum 1, timeout 1d then deny",
        "audited decided as row #31", "audited escalated as row #32",
        "timer fired after 1d", "audited approval_timed_out as row #33",
        "audited outcome as row #35",
        "outcome TIMED_OUT (rule refunds-need-approval, policy 83874f4a969c0ab4)"]


def test_refusals_rate_limits_and_patches_are_named() -> None:
    refused = [s.text for s in timeline(load("identity_refused"))]
    assert any(t.startswith("identity REFUSED: ") for t in refused)
    limited = [s.text for s in timeline(load("rate_limited"))]
    assert "code version marker: patched 'rate-limits'" in limited
    assert any(t.startswith("rate limit EXCEEDED: actions_per_minute") for t in limited)
    slack = [s.text for s in timeline(load("slack_approved"))]
    assert "approvers notified: 3 Slack message(s)" in slack


def test_describe_event_names_type_and_step() -> None:
    history = load("timed_out")
    assert describe_event(history, 5) == "event 5 ACTIVITY_TASK_SCHEDULED proctor.verify_identity"
    assert describe_event(history, 33) == "event 33 TIMER_FIRED: timer fired after 1d"
    assert describe_event(history, 999) == "event 999 (not in the history)"
