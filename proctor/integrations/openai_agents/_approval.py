"""Escalations as the SDK's own approval interruptions, decided by Proctor.

`needs_approval` asks Proctor (`decide`, which never takes the permission to execute) and says
yes only while the request awaits a human: the run stops with the call in
`result.interruptions`, and the approver decides in Proctor (Slack, `proctor approve`). The
app's `state.approve(item)` only lets the run resume: the governed tool then joins the same
workflow (same request id) and runs only if Proctor approved, blocking while it is undecided;
a local `state.reject(item)` means the tool never runs (the Proctor request is left to its
approvers or its timeout; if approved, nobody takes it and it ends `failed`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from agents import RunContextWrapper, ToolApprovalItem

from proctor.client import Client
from proctor.integrations import Governor
from proctor.integrations.openai_agents._calls import call_params, call_request_id
from proctor.models import Progress, Stage, workflow_id_for
from proctor.signing import AgentKey

NeedsApproval = bool | Callable[[RunContextWrapper[Any], dict[str, Any], str], Awaitable[bool]]
"""The SDK's `FunctionTool.needs_approval`."""


class ProctorApprovalCheck:
    """A governed tool's `needs_approval`: true while Proctor holds the call for a human
    (or when the tool's own setting, `also`, asks for a local approval anyway)."""

    def __init__(self, governor: Governor, action: str, *, also: NeedsApproval = False) -> None:
        self._governor = governor
        self._action = action
        self._also = also

    async def __call__(
        self, context: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        if await self._tool_asks_too(context, params, call_id):
            return True
        request_id = call_request_id(self._governor.key.agent_id, call_id, params)
        progress = await self._governor.decide(self._action, params, request_id=request_id)
        return progress.stage is Stage.AWAITING_APPROVAL

    async def _tool_asks_too(
        self, context: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        if not callable(self._also):
            return self._also
        answer = self._also(context, params, call_id)
        return bool(await answer) if inspect.isawaitable(answer) else bool(answer)


def interruption_workflow_id(item: ToolApprovalItem, agent_id: str) -> str:
    """The Proctor workflow behind an interruption a governed tool raised (for `proctor
    approve`, the Temporal UI, or `Client.progress`)."""
    if item.call_id is None:
        raise ValueError(f"interruption for {item.name!r} carries no tool call id")
    params = call_params(item.arguments)
    return workflow_id_for(call_request_id(agent_id, item.call_id, params))


async def interruption_progress(
    item: ToolApprovalItem, *, key: AgentKey, client: Client | None = None
) -> Progress:
    """Where Proctor stands on an interrupted call: `progress.pending` is the approval it
    waits for (approvers, card, votes so far) while `progress.stage` is awaiting_approval."""
    proctor = await Governor(key, client).client()
    return await proctor.progress(interruption_workflow_id(item, key.agent_id))
