"""What a tool call is to Proctor: its action, its request id, and whether a run may pause on
it; and the governor every wrapper holds."""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic_ai import RunContext
from pydantic_ai.tools import DeferredToolRequests

from proctor.client import Client
from proctor.errors import InputError
from proctor.integrations import Governor, derive_request_id
from proctor.signing import AgentKey

ActionNamer = Callable[[str], str]
"""A tool's name → the action Proctor governs (default `tool_action`: `tool:<name>`)."""


def governor_for(
    key: AgentKey | None, client: Client | None, governor: Governor | None
) -> Governor:
    """The wrappers' one way in: the agent's key (and a client, else one connected on first
    use), or a governor already shared with other wrappers."""
    if governor is not None:
        if key is not None or client is not None:
            raise InputError("give key= (and client=) or governor=, not both")
        return governor
    if not isinstance(key, AgentKey):
        raise InputError("key= must be the agent's AgentKey (e.g. AgentKey.from_env())")
    if client is not None and not isinstance(client, Client):
        raise InputError("client= must be a connected proctor.Client (or left out)")
    return Governor(key, client)


def tool_call_request_id(agent_id: str, conversation_id: str, tool_call_id: str) -> str:
    """The request id of one tool call: the same for a resumed or re-run call, so it joins the
    request it made first."""
    return derive_request_id("pydantic-ai", agent_id, conversation_id, tool_call_id)


def request_id_of(agent_id: str, ctx: RunContext[Any]) -> str:
    """The request id of the tool call `ctx` is running."""
    return tool_call_request_id(agent_id, conversation_of(ctx), tool_call_id_of(ctx))


def conversation_of(ctx: RunContext[Any]) -> str:
    """The conversation a run continues: given to `Agent.run`, else the message history's,
    else the run's own."""
    conversation = ctx.conversation_id or ctx.run_id
    if not conversation:
        raise InputError("a governed tool was called outside an agent run (no conversation id)")
    return conversation


def tool_call_id_of(ctx: RunContext[Any]) -> str:
    if not ctx.tool_call_id:
        raise InputError("a governed tool was called without a tool call id")
    return ctx.tool_call_id


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
