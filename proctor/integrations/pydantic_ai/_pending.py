"""An escalated tool call as the paused run hands it to the app: in the call's metadata of
`DeferredToolRequests`, JSON, read back as `ApprovalPending`."""

from __future__ import annotations

from datetime import datetime

from pydantic_ai.tools import DeferredToolRequests

from proctor.models import Progress, workflow_id_for
from proctor.models.base import Frozen

METADATA_KEY = "proctor"
"""Where an escalated call's `ApprovalPending` sits in `DeferredToolRequests.metadata`."""


class ApprovalPending(Frozen):
    """An escalated tool call waiting for Proctor's approvers, who decide in Proctor (Slack,
    `proctor approve`): what an app shows its user, and the workflow to follow
    (`client.progress(workflow_id)`) before resuming the run. Read it back with `.of(...)`."""

    workflow_id: str
    request_id: str
    action: str
    tool: str
    tool_call_id: str
    rule_id: str | None = None
    reason: str | None = None
    approvers: tuple[str, ...] = ()
    quorum: int | None = None
    deadline: datetime | None = None
    """When the request times out undecided."""
    approved_by: tuple[str, ...] = ()

    @classmethod
    def of(cls, requests: DeferredToolRequests, tool_call_id: str) -> ApprovalPending | None:
        """The approval Proctor awaits for this deferred call (None: not one of Proctor's)."""
        raw = requests.metadata.get(tool_call_id, {}).get(METADATA_KEY)
        return None if raw is None else cls.model_validate(raw)

    @classmethod
    def at(
        cls, progress: Progress, *, request_id: str, action: str, tool: str, tool_call_id: str
    ) -> ApprovalPending:
        """The pending approval a request's progress shows."""
        call = cls(
            workflow_id=workflow_id_for(request_id),
            request_id=request_id,
            action=action,
            tool=tool,
            tool_call_id=tool_call_id,
        )
        pending = progress.pending
        if pending is None:
            return call
        card = pending.card
        return call.model_copy(
            update={
                "rule_id": card.rule_id,
                "reason": card.reason,
                "approvers": card.approvers,
                "quorum": card.quorum,
                "deadline": card.deadline,
                "approved_by": pending.approvals,
            }
        )

    def metadata(self) -> dict[str, object]:
        """What `ApprovalRequired(metadata=...)` carries to the app."""
        return {METADATA_KEY: self.model_dump(mode="json")}
