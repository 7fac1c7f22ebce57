"""`ProctorMiddleware`: every tool call of a LangChain v1 agent governed by Proctor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt

from proctor.client import Client
from proctor.errors import ActionNotCompleted
from proctor.integrations import ActionNaming, Governor, action_namer, tool_action
from proctor.integrations.langchain._calls import GovernedCall
from proctor.integrations.langchain._naming import request_id_for
from proctor.integrations.langchain._runs import run_governed, run_governed_sync
from proctor.models import Stage
from proctor.signing import AgentKey

ToolOutput = ToolMessage | Command[Any]


class ProctorMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Governs every tool call of `create_agent(..., middleware=[ProctorMiddleware(key=key)])`.

    Each call asks Proctor for `action(tool name)` (default `tool:<name>`) with the tool's
    arguments as the model gave them, and runs the tool only once allowed or approved, once.
    A denial, rejection, timeout or cancellation comes back to the model as an error
    `ToolMessage` carrying the verdict and reason; the tool never runs.

    An escalated call blocks until the approvers decide, unless `interrupt=True`: then the run
    pauses with LangGraph's `interrupt()` (the graph needs a checkpointer), its value an
    `ApprovalPending` dict; resuming with `Command(resume=...)` asks Proctor again and runs
    the tool if approved, answers the model if not, or pauses again if still undecided. The
    resume value is never taken as an approval: only Proctor's approvers decide.

    The request id comes from the agent, the thread (`configurable.thread_id`) and the tool
    call's id, so a run resumed after a crash joins the request it made instead of asking
    twice. Without a thread id, every call is a new request.
    """

    def __init__(
        self,
        *,
        key: AgentKey,
        client: Client | None = None,
        action: ActionNaming = tool_action,
        interrupt: bool = False,
    ) -> None:
        super().__init__()
        self.governor = Governor(key, client)
        self.action_for = action_namer(action)
        self.interrupt = interrupt

    def _governed(self, request: ToolCallRequest) -> GovernedCall:
        tool_call = request.tool_call
        tool_call_id = tool_call.get("id") or ""
        config: RunnableConfig | None = getattr(request.runtime, "config", None)
        return GovernedCall(
            tool=tool_call["name"],
            tool_call_id=tool_call_id,
            action=self.action_for(tool_call["name"]),
            params=dict(tool_call["args"]),
            request_id=request_id_for(self.governor.key.agent_id, config, tool_call_id),
        )

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolOutput],
    ) -> ToolOutput:
        call = self._governed(request)
        try:
            if self.interrupt:
                progress = self.governor.decide_sync(
                    call.action, call.params, request_id=call.request_id
                )
                while progress.stage is Stage.AWAITING_APPROVAL:
                    interrupt(call.pending(progress))
                    progress = self.governor.decide_sync(
                        call.action, call.params, request_id=call.request_id
                    )
            output = run_governed_sync(
                self.governor, call.action, call.params, call.request_id, lambda: handler(request)
            )
        except ActionNotCompleted as error:
            if not call.is_own(error):
                raise
            return call.refusal(error)
        answer: ToolOutput = call.answer(output)
        return answer

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolOutput]],
    ) -> ToolOutput:
        call = self._governed(request)
        try:
            if self.interrupt:
                progress = await self.governor.decide(
                    call.action, call.params, request_id=call.request_id
                )
                while progress.stage is Stage.AWAITING_APPROVAL:
                    interrupt(call.pending(progress))
                    progress = await self.governor.decide(
                        call.action, call.params, request_id=call.request_id
                    )
            output = await run_governed(
                self.governor, call.action, call.params, call.request_id, lambda: handler(request)
            )
        except ActionNotCompleted as error:
            if not call.is_own(error):
                raise
            return call.refusal(error)
        answer: ToolOutput = call.answer(output)
        return answer
