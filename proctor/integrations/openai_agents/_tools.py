"""Governed function tools: the SDK's own `FunctionTool`, run only once Proctor allows it.

The governed tool keeps the original's name, description, schema and options; only its
invocation changes: the call's arguments become the request's params, the request id comes
from the agent and the tool call id, and the original body runs inside `Governor.call`, in
this process, once the workflow grants it. A verdict other than "go" (denied, rejected, timed
out...) is the tool's output, one line for the model, so the run goes on and the model adapts.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from agents import FunctionTool, function_tool
from agents.tool import (
    maybe_invoke_function_tool_failure_error_function,
    set_function_tool_failure_error_function,
)
from agents.tool_context import ToolContext

from proctor.client import Client
from proctor.errors import ActionNotCompleted
from proctor.integrations import Governor, tool_action, verdict_text
from proctor.integrations.openai_agents._approval import ProctorApprovalCheck
from proctor.integrations.openai_agents._calls import call_params, call_request_id
from proctor.signing import AgentKey


def govern(
    tool: FunctionTool,
    *,
    key: AgentKey,
    client: Client | None = None,
    action: str | None = None,
    interrupt: bool = False,
) -> FunctionTool:
    """A copy of `tool` governed by Proctor as `action` (default `tool:<name>`).

    `interrupt=True`: an escalated call pauses the run as the SDK's own approval interruption
    (`result.interruptions`) instead of blocking inside the tool; see `ProctorApprovalCheck`.
    """
    return _governed(tool, Governor(key, client), action or tool_action(tool.name), interrupt)


def governed_tool(
    fn: Callable[..., Any],
    *,
    key: AgentKey,
    client: Client | None = None,
    action: str | None = None,
    interrupt: bool = False,
    **function_tool_options: Any,
) -> FunctionTool:
    """`function_tool(fn, **function_tool_options)`, governed (see `govern`)."""
    tool = function_tool(fn, **function_tool_options)
    return govern(tool, key=key, client=client, action=action, interrupt=interrupt)


def proctor_tool(
    *,
    key: AgentKey,
    client: Client | None = None,
    action: str | None = None,
    interrupt: bool = False,
    **function_tool_options: Any,
) -> Callable[[Callable[..., Any]], FunctionTool]:
    """Decorator form of `governed_tool`: `@proctor_tool(key=key)` over a plain function."""

    def decorate(fn: Callable[..., Any]) -> FunctionTool:
        return governed_tool(
            fn, key=key, client=client, action=action, interrupt=interrupt, **function_tool_options
        )

    return decorate


def _governed(tool: FunctionTool, governor: Governor, action: str, interrupt: bool) -> FunctionTool:
    invocation = _GovernedInvocation(tool, governor, action)
    needs_approval = tool.needs_approval
    if interrupt:
        needs_approval = ProctorApprovalCheck(governor, action, also=tool.needs_approval)
    return dataclasses.replace(
        tool, on_invoke_tool=invocation.invoke, needs_approval=needs_approval
    )


class _GovernedInvocation:
    """Runs one tool's calls through Proctor. The original body runs from a copy whose own
    error formatting is off, so a body that raises is recorded by the workflow as `failed`;
    the model then sees what the original tool's failure policy says."""

    def __init__(self, tool: FunctionTool, governor: Governor, action: str) -> None:
        self._tool = tool
        self._body = set_function_tool_failure_error_function(copy.copy(tool), None)
        self._formats_failures = callable(
            getattr(tool.on_invoke_tool, "__agents_bind_function_tool__", None)
        )
        """Made by `function_tool` (errors become a message for the model); a hand-built
        `FunctionTool`'s errors fail the run, as they would ungoverned."""
        self._governor = governor
        self._action = action

    async def invoke(self, context: ToolContext[Any], arguments: str) -> Any:
        try:
            params = call_params(arguments)
            request_id = call_request_id(self._governor.key.agent_id, context.tool_call_id, params)

            async def run_body(**_: Any) -> Any:
                return await self._body.on_invoke_tool(context, arguments)

            return await self._governor.call(self._action, run_body, params, request_id=request_id)
        except ActionNotCompleted as verdict:
            return verdict_text(verdict, self._action)
        except Exception as exc:
            if not self._formats_failures:
                raise
            message = await maybe_invoke_function_tool_failure_error_function(
                function_tool=self._tool, context=context, error=exc
            )
            if message is None:
                raise
            return message
