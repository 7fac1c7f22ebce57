"""`Outcome.raise_for_status()`: a completed action passes through; every other ending is its
own typed `ProctorError`, carrying status, rule, reason and the handler's error."""

from __future__ import annotations

import pickle

import pytest

from proctor import (
    ActionCancelled,
    ActionDenied,
    ActionFailed,
    ActionNotCompleted,
    ActionRejected,
    ActionStatus,
    ActionTimedOut,
    Decision,
    Effect,
    Outcome,
    OutcomeUnknown,
    ProctorError,
)


def outcome(status: ActionStatus, error: str | None = None) -> Outcome:
    return Outcome(
        request_id="r1",
        workflow_id="action-r1",
        status=status,
        decision=Decision(
            effect=Effect.ESCALATE,
            rule_id="refunds",
            policy_version="v1",
            reason="refunds need a human",
        ),
        result="refunded" if status is ActionStatus.COMPLETED else None,
        error=error,
    )


def test_a_completed_action_passes_through() -> None:
    done = outcome(ActionStatus.COMPLETED)

    assert done.raise_for_status() is done


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (ActionStatus.DENIED, ActionDenied),
        (ActionStatus.REJECTED, ActionRejected),
        (ActionStatus.TIMED_OUT, ActionTimedOut),
        (ActionStatus.CANCELLED, ActionCancelled),
        (ActionStatus.TERMINATED, ActionCancelled),
        (ActionStatus.FAILED, ActionFailed),
        (ActionStatus.UNKNOWN, OutcomeUnknown),
    ],
)
def test_every_other_ending_raises_its_own_error(
    status: ActionStatus, kind: type[ActionNotCompleted]
) -> None:
    with pytest.raises(kind) as raised:
        outcome(status).raise_for_status()

    error = raised.value
    assert isinstance(error, ProctorError)
    assert (error.status, error.workflow_id, error.rule_id, error.reason) == (
        status.value,
        "action-r1",
        "refunds",
        "refunds need a human",
    )
    assert str(error) == f"action-r1: {status.value} (rule refunds): refunds need a human"


def test_a_handler_failure_says_what_it_raised_and_survives_pickling() -> None:
    with pytest.raises(ActionFailed) as raised:
        outcome(ActionStatus.FAILED, error="ValueError: card declined").raise_for_status()

    error = raised.value
    assert error.error == "ValueError: card declined"
    assert str(error) == "action-r1: failed (rule refunds): ValueError: card declined"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes, just made)
    assert type(copy) is ActionFailed
    assert (str(copy), copy.error, copy.rule_id) == (str(error), error.error, "refunds")
