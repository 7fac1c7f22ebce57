"""One governed tool call: what Proctor is asked (action, params, request id), and how its
answer reaches the model (the tool's message, a refusal as an error message, or a pause)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from pydantic import BaseModel, ConfigDict

from proctor.errors import ActionNotCompleted
from proctor.integrations import verdict_text
from proctor.integrations.langchain._runs import RecordedRun
from proctor.models import Progress, workflow_id_for


class ApprovalPending(BaseModel):
    """The value a paused run's interrupt carries (`result["__interrupt__"][i].value`, as a
    dict): the governed tool call waiting for the approvers, who decide in Proctor (Slack,
    `proctor approve`). Resuming with `Command(resume=...)` asks Proctor again, whatever the
    resume value says: a resume value is never taken as an approval."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["proctor_approval_pending"] = "proctor_approval_pending"
    workflow_id: str
    request_id: str
    action: str
    tool: str
    tool_call_id: str
    rule_id: str
    reason: str
    approvers: list[str]
    quorum: int
    deadline: str
    """ISO 8601: when the request times out undecided."""
    approved_by: list[str]


@dataclass(frozen=True)
class GovernedCall:
    """A tool call as Proctor governs it."""

    tool: str
    tool_call_id: str
    action: str
    params: dict[str, Any]
    """The arguments as the model gave them (as the tool received them, for `govern`)."""
    request_id: str

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.request_id)

    def is_own(self, error: ActionNotCompleted) -> bool:
        """Whether `error` is Proctor's answer to this call (not one the tool itself raised
        from a governed call of its own)."""
        return error.workflow_id == self.workflow_id

    def refusal(self, error: ActionNotCompleted) -> ToolMessage:
        """The verdict as an error message the model reads, so it can adapt."""
        return ToolMessage(
            content=verdict_text(error, self.action),
            tool_call_id=self.tool_call_id,
            name=self.tool,
            status="error",
        )

    def answer(self, output: Any) -> Any:
        """The tool's own output, or the recorded run of another process as a message."""
        if isinstance(output, RecordedRun):
            return output.message(self.tool_call_id, self.tool)
        return output

    def pending(self, progress: Progress) -> dict[str, Any]:
        """The interrupt's value for a call awaiting approval (JSON-able)."""
        waiting = progress.pending
        if waiting is None:  # the workflow answers with its card; never seen without one
            raise RuntimeError(f"{self.workflow_id}: awaiting approval but no approval card")
        card = waiting.card
        return ApprovalPending(
            workflow_id=card.workflow_id,
            request_id=card.request_id,
            action=card.action,
            tool=self.tool,
            tool_call_id=self.tool_call_id,
            rule_id=card.rule_id,
            reason=card.reason,
            approvers=list(card.approvers),
            quorum=card.quorum,
            deadline=card.deadline.isoformat(),
            approved_by=list(waiting.approvals),
        ).model_dump(mode="json")
