"""How a governed action ends, and where it stands meanwhile (the `progress` query)."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from pydantic import TypeAdapter

from proctor.errors import (
    ActionCancelled,
    ActionDenied,
    ActionFailed,
    ActionNotCompleted,
    ActionRejected,
    ActionTimedOut,
    OutcomeUnknown,
)
from proctor.models.approval import PendingApproval, RecordedVote
from proctor.models.base import Frozen, Jsonable
from proctor.models.decision import Decision

ResultT = TypeVar("ResultT")


class ActionStatus(StrEnum):
    COMPLETED = "completed"
    DENIED = "denied"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Stopped through Proctor (`proctor cancel`, or a cancellation request) before it ran."""
    TERMINATED = "terminated"
    """Ended outside Proctor (terminated or reset in Temporal): recorded by the reconciler."""
    UNKNOWN = "unknown"
    """A process took the permission to execute and never reported: it may or may not have
    run."""


class Outcome(Frozen):
    request_id: str
    workflow_id: str
    status: ActionStatus
    decision: Decision
    approvals: tuple[RecordedVote, ...] = ()
    result: Jsonable = None
    """What the handler or tool returned: see `ToolResult.result`."""
    error: str | None = None
    audit_seqs: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is ActionStatus.COMPLETED

    def result_as(self, result_type: type[ResultT]) -> ResultT:
        """The recorded result validated into `result_type` (a pydantic model, a dataclass,
        `datetime`, `Decimal`, ...): what the handler returned, as its own type again."""
        return TypeAdapter(result_type).validate_python(self.result)

    def raise_for_status(self) -> Outcome:
        """This outcome if the action completed; else the typed `ActionNotCompleted` saying
        how it ended (denied, rejected, timed out, cancelled, failed, unknown), so code that
        only goes on after a completed action can let the error travel."""
        if self.ok:
            return self
        kind = _NOT_COMPLETED[self.status]
        decision = self.decision
        message = f"{self.workflow_id}: {self.status.value} (rule {decision.rule_id}): "
        message += (
            self.error if self.status is ActionStatus.FAILED and self.error else decision.reason
        )
        raise kind(
            message,
            status=self.status.value,
            workflow_id=self.workflow_id,
            rule_id=decision.rule_id,
            reason=decision.reason,
            error=self.error,
        )


_NOT_COMPLETED: dict[ActionStatus, type[ActionNotCompleted]] = {
    ActionStatus.DENIED: ActionDenied,
    ActionStatus.REJECTED: ActionRejected,
    ActionStatus.TIMED_OUT: ActionTimedOut,
    ActionStatus.CANCELLED: ActionCancelled,
    ActionStatus.TERMINATED: ActionCancelled,
    ActionStatus.FAILED: ActionFailed,
    ActionStatus.UNKNOWN: OutcomeUnknown,
}


class Stage(StrEnum):
    VERIFYING = "verifying"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_EXECUTION = "awaiting_execution"
    EXECUTING = "executing"
    CLOSED = "closed"


class Progress(Frozen):
    """Where a governed action stands (the workflow's `progress` query)."""

    stage: Stage
    votes: tuple[RecordedVote, ...] = ()
    pending: PendingApproval | None = None
    outcome: Outcome | None = None
