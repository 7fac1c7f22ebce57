"""How a governed action ends, and where it stands meanwhile (the `progress` query)."""

from __future__ import annotations

from enum import StrEnum

from proctor.models.approval import PendingApproval, RecordedVote
from proctor.models.base import Frozen, Jsonable
from proctor.models.decision import Decision


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
