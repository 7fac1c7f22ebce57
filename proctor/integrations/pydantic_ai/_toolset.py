"""The one place a PydanticAI tool call meets Proctor: a wrapper toolset whose `call_tool`
asks first, and runs the wrapped tool only with Proctor's permission."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.exceptions import ApprovalRequired, ToolFailed
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool

from proctor.client import Client
from proctor.errors import ActionNotCompleted, ConflictError, InputError
from proctor.integrations import ActionNaming, Governor, action_namer, tool_action, verdict_text
from proctor.integrations.pydantic_ai._calls import (
    ActionNamer,
    allows_deferred_tools,
    governor_for,
    request_id_of,
    tool_call_id_of,
)
from proctor.integrations.pydantic_ai._pending import ApprovalPending
from proctor.models import Stage
from proctor.signing import AgentKey

_GOVERNED_CALL: ContextVar[str | None] = ContextVar("proctor_pydantic_ai_call", default=None)
"""The request id of the tool call running under governance in this context: a second wrapper
around the same tool (a capability and a toolset) lets it through instead of asking again for
a request its outer wrapper holds (which would wait on itself)."""


@dataclass(init=False)
class ProctorToolset(WrapperToolset[AgentDepsT]):
    """Governs every call to the tools of `wrapped`:
    `Agent(model, toolsets=[ProctorToolset(FunctionToolset([refund_order]), key=key)])`.

    `client=`: a connected `proctor.Client` (else one connected on first use); `governor=`
    instead of both shares one with other wrappers. `action=`: a function or a mapping of tool
    names (default `tool:<name>`). `defer_escalations`: True ends the run at an escalation
    (`DeferredToolRequests`), False blocks until decided; None (default) defers when the
    agent's output types allow it.
    """

    governor: Governor = field(repr=False)
    action: ActionNamer = tool_action
    defer_escalations: bool | None = None

    def __init__(
        self,
        wrapped: AbstractToolset[AgentDepsT],
        *,
        key: AgentKey | None = None,
        client: Client | None = None,
        governor: Governor | None = None,
        action: ActionNaming = tool_action,
        defer_escalations: bool | None = None,
    ) -> None:
        self.wrapped = wrapped
        self.governor = governor_for(key, client, governor)
        self.action = action_namer(action)
        self.defer_escalations = defer_escalations

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[AgentDepsT],
        tool: ToolsetTool[AgentDepsT],
    ) -> Any:
        request_id = request_id_of(self.governor.key.agent_id, ctx)
        if _GOVERNED_CALL.get() == request_id:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool)  # governed outside
        action = self.action(name)
        started = False

        async def run(**_params: Any) -> Any:
            """The tool itself, with exactly the arguments PydanticAI validated (not the JSON
            copy Proctor signed)."""
            nonlocal started
            started = True
            token = _GOVERNED_CALL.set(request_id)
            try:
                return await self.wrapped.call_tool(name, tool_args, ctx, tool)
            finally:
                _GOVERNED_CALL.reset(token)

        try:
            if self._defers(ctx):
                await self._defer_while_awaiting_approval(name, action, tool_args, request_id, ctx)
            return await self.governor.call(action, run, tool_args, request_id=request_id)
        except ActionNotCompleted as error:
            if started:
                raise  # the tool's own error, as it raised it
            raise ToolFailed(verdict_text(error, action)) from error
        except ConflictError as error:
            if started:
                raise
            raise InputError(
                f"{name} call {ctx.tool_call_id} of this conversation was put to Proctor before "
                "with other arguments: an approval cannot change what the approvers saw "
                "(ToolApproved.override_args)"
            ) from error

    def _defers(self, ctx: RunContext[AgentDepsT]) -> bool:
        if self.defer_escalations is not None:
            return self.defer_escalations
        return ctx.agent is not None and allows_deferred_tools(ctx.agent.output_type)

    async def _defer_while_awaiting_approval(
        self,
        tool: str,
        action: str,
        params: dict[str, Any],
        request_id: str,
        ctx: RunContext[AgentDepsT],
    ) -> None:
        """Start (or join) the request without running anything; while approvers have not
        decided, end the run with the call pending (a local approval changes nothing here).
        Allowed or approved, or run already elsewhere: `call` takes it from here."""
        progress = await self.governor.decide(action, params, request_id=request_id)
        if progress.stage is Stage.CLOSED and progress.outcome is not None:
            progress.outcome.raise_for_status()  # denied, rejected...: no second submission
        if progress.stage is Stage.AWAITING_APPROVAL:
            pending = ApprovalPending.at(
                progress,
                request_id=request_id,
                action=action,
                tool=tool,
                tool_call_id=tool_call_id_of(ctx),
            )
            raise ApprovalRequired(metadata=pending.metadata())
