"""`Outcome.raise_for_status()`: a completed action passes through; every other ending is its
own typed `ProctorError`, carrying status, rule, reason and the handler's error."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

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


@dataclass
class Refund:
    amount: Decimal
    at: datetime


def test_result_as_gives_the_handlers_type_back() -> None:
    """Results travel as JSON (a model as a dict, datetime and Decimal as strings); the
    caller names the type and gets it back, or a validation error if it does not fit."""
    recorded = outcome(ActionStatus.COMPLETED).model_copy(
        update={"result": {"amount": "5.10", "at": "2026-12-03T12:00:00Z"}}
    )
    assert recorded.result_as(Refund) == Refund(
        Decimal("5.10"), datetime(2026, 12, 3, 12, tzinfo=UTC)
    )
    with pytest.raises(ValidationError):
        recorded.result_as(int)
