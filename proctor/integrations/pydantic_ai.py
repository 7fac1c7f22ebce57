"""Proctor for PydanticAI: every tool call an agent makes is a governed Proctor request.

```python
agent = Agent(model, tools=[refund_order], capabilities=[ProctorCapability(key=key)])
```

The action is `tool:<name>` (or `action=`'s name for the tool) and the params are the tool's
arguments as PydanticAI validated them. The tool runs in this process only once Proctor allows
it. A denial, rejection or timeout reaches the model as the call's failed result saying why
(`ToolFailed`: not a retry prompt, the run goes on and the model adapts). An escalation blocks
the call until decided; when the run's output types include `DeferredToolRequests`, it ends the
run with the call awaiting approval instead (`ApprovalRequired`; `ApprovalPending.of(...)`
reads the request back from its metadata). The resumed run re-checks with Proctor: the tool runs
only if Proctor approved it, whatever the app's `DeferredToolResults` says (a local denial never
runs it). A call's request id comes from the agent, the conversation and the tool call id, so a
re-run of the same call after a crash joins the request instead of asking twice.

Tools run at the model provider (native tools: web search, code execution) are outside any
toolset and are not governed; output tools are not tool calls of the agent and are not either.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union, get_args, get_origin

from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import ApprovalRequired, ToolFailed
from pydantic_ai.tools import AgentDepsT, DeferredToolRequests
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool

from proctor.client import Client
from proctor.errors import ActionNotCompleted, ConflictError, InputError
from proctor.integrations import Governor, derive_request_id, tool_action, verdict_text
from proctor.models import Progress, Stage, workflow_id_for
from proctor.models.base import Frozen
from proctor.signing import AgentKey

ActionNamer = Callable[[str], str]
"""A tool's name → the action Proctor governs (default `tool_action`: `tool:<name>`)."""
ActionNaming = ActionNamer | Mapping[str, str]
"""`action=`: a function, or a mapping naming some tools' actions (the others: `tool:<name>`)."""

METADATA_KEY = "proctor"
"""Where an escalated call's `ApprovalPending` sits in `DeferredToolRequests.metadata`."""

_GOVERNED_CALL: ContextVar[str | None] = ContextVar("proctor_pydantic_ai_call", default=None)
"""The request id of the tool call running under governance in this context: a second wrapper
around the same tool (a capability and a toolset) lets it through instead of asking again for
a request its outer wrapper holds (which would wait on itself)."""


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


def tool_call_request_id(agent_id: str, conversation_id: str, tool_call_id: str) -> str:
    """The request id of one tool call: the same for a resumed or re-run call, so it joins the
    request it made first."""
    return derive_request_id("pydantic-ai", agent_id, conversation_id, tool_call_id)


def governor_for(
    key: AgentKey | None, client: Client | None, governor: Governor | None
) -> Governor:
    """The adapters' one way in: the agent's key (and a client, else one connected on first
    use), or a governor already shared with other toolsets."""
    if governor is not None:
        if key is not None or client is not None:
            raise InputError("give key= (and client=) or governor=, not both")
        return governor
    if not isinstance(key, AgentKey):
        raise InputError("key= must be the agent's AgentKey (e.g. AgentKey.from_env())")
    if client is not None and not isinstance(client, Client):
        raise InputError("client= must be a connected proctor.Client (or left out)")
    return Governor(key, client)


def action_namer(naming: ActionNaming) -> ActionNamer:
    """One function for both forms of `action=`."""
    if isinstance(naming, Mapping):
        overrides = dict(naming)
        return lambda name: overrides.get(name, tool_action(name))
    if callable(naming):
        return naming
    raise InputError(f"action= takes a function or a mapping of tool names, not {naming!r}")


def allows_deferred_tools(output_type: object) -> bool:
    """Whether an agent's output types (a type, a union, a list of them) let a run end with
    `DeferredToolRequests`."""
    if output_type is DeferredToolRequests:
        return True
    if isinstance(output_type, Sequence) and not isinstance(output_type, str | bytes):
        return any(allows_deferred_tools(item) for item in output_type)
    if isinstance(output_type, types.UnionType) or get_origin(output_type) is Union:
        return any(allows_deferred_tools(item) for item in get_args(output_type))
    return False


@dataclass(init=False)
class ProctorToolset(WrapperToolset[AgentDepsT]):
    """Governs every call to the tools of `wrapped`:
    `Agent(model, toolsets=[ProctorToolset(FunctionToolset([refund_order]), key=key)])`.

    `defer_escalations`: True ends the run at an escalation (`DeferredToolRequests`), False
    blocks until decided; None (default) defers when the agent's output types allow it.
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
        action = self.action(name)
        call_id = _tool_call_id(ctx)
        request_id = tool_call_request_id(self.governor.key.agent_id, _conversation(ctx), call_id)
        if _GOVERNED_CALL.get() == request_id:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool)  # governed outside
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
                await self._defer_while_awaiting_approval(
                    action, tool_args, request_id, tool=name, call_id=call_id
                )
            return await self.governor.call(action, run, tool_args, request_id=request_id)
        except ActionNotCompleted as error:
            if started:
                raise  # the tool's own error, as it raised it
            raise ToolFailed(verdict_text(error, action)) from error
        except ConflictError as error:
            if started:
                raise
            raise InputError(
                f"{name} call {call_id} was put to Proctor with other arguments: an "
                "approval cannot change what the approvers saw (ToolApproved.override_args)"
            ) from error

    def _defers(self, ctx: RunContext[AgentDepsT]) -> bool:
        if self.defer_escalations is not None:
            return self.defer_escalations
        return ctx.agent is not None and allows_deferred_tools(ctx.agent.output_type)

    async def _defer_while_awaiting_approval(
        self, action: str, params: dict[str, Any], request_id: str, *, tool: str, call_id: str
    ) -> None:
        """Start (or join) the request without running anything; while approvers have not
        decided, end the run with the call pending (a local approval changes nothing here)."""
        progress = await self.governor.decide(action, params, request_id=request_id)
        if progress.stage is Stage.AWAITING_APPROVAL:
            pending = ApprovalPending.at(
                progress, request_id=request_id, action=action, tool=tool, tool_call_id=call_id
            )
            raise ApprovalRequired(metadata={METADATA_KEY: pending.model_dump(mode="json")})


@dataclass(init=False)
class ProctorCapability(AbstractCapability[AgentDepsT]):
    """Governs every tool call of an agent (its own tools and every toolset it runs with):
    `Agent(model, tools=[...], capabilities=[ProctorCapability(key=key)])`. Same options as
    `ProctorToolset`."""

    governor: Governor = field(repr=False)
    action: ActionNamer = tool_action
    defer_escalations: bool | None = None

    def __init__(
        self,
        *,
        key: AgentKey | None = None,
        client: Client | None = None,
        governor: Governor | None = None,
        action: ActionNaming = tool_action,
        defer_escalations: bool | None = None,
    ) -> None:
        self.governor = governor_for(key, client, governor)
        self.action = action_namer(action)
        self.defer_escalations = defer_escalations

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a private key and a live client: not for agent spec files

    def get_wrapper_toolset(
        self, toolset: AbstractToolset[AgentDepsT]
    ) -> AbstractToolset[AgentDepsT] | None:
        return ProctorToolset(
            toolset,
            governor=self.governor,
            action=self.action,
            defer_escalations=self.defer_escalations,
        )


def _conversation(ctx: RunContext[Any]) -> str:
    conversation = ctx.conversation_id or ctx.run_id
    if not conversation:
        raise InputError("a governed tool was called outside an agent run (no conversation id)")
    return conversation


def _tool_call_id(ctx: RunContext[Any]) -> str:
    if not ctx.tool_call_id:
        raise InputError("a governed tool was called without a tool call id")
    return ctx.tool_call_id


__all__ = [
    "METADATA_KEY",
    "ActionNamer",
    "ActionNaming",
    "ApprovalPending",
    "ProctorCapability",
    "ProctorToolset",
    "action_namer",
    "allows_deferred_tools",
    "governor_for",
    "tool_call_request_id",
]
