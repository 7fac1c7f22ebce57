"""Which action a tool call asks for, and which request it is: the names Proctor governs by."""

from __future__ import annotations

import uuid

from langchain_core.runnables import RunnableConfig

from proctor.integrations import derive_request_id


def thread_id_of(config: RunnableConfig | None) -> str | None:
    """The LangGraph thread this run belongs to (`configurable.thread_id`), if any."""
    configurable = (config or {}).get("configurable") or {}
    thread = configurable.get("thread_id")
    return None if thread is None or thread == "" else str(thread)


def request_id_for(agent_id: str, config: RunnableConfig | None, tool_call_id: str | None) -> str:
    """The same request for the same tool call of the same thread, so a run resumed after a
    crash (or an interrupt) joins the request it made instead of asking twice. Without a
    thread id or a tool-call id there is nothing that would identify the call again: it is a
    new request each time (a run without a checkpointer cannot resume either)."""
    thread = thread_id_of(config)
    if thread is None or not tool_call_id:
        return uuid.uuid4().hex
    return derive_request_id(agent_id, thread, tool_call_id)
