"""Durable tools for tests that move a time-skipping clock: requests nothing waits on, and an
agent whose tools only record that they ran."""

from __future__ import annotations

from typing import Any

from proctor import AgentKey, Client
from proctor.client import agent_task_queue
from proctor.models import ActionRequest, ExecutionMode, ExecutionSpec
from tests.helpers.harness import Harness


def tool_request(key: AgentKey, action: str, params: dict[str, Any]) -> ActionRequest:
    """A durable-tool request: nothing waits on an update, so the test server's clock moves
    only when the test sleeps (a handler-mode client's pending update would hold it still)."""
    return key.new_request(
        action,
        params,
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id)),
    )


def recording_tools(gov: Harness, *actions: str) -> tuple[Client, list[dict[str, Any]]]:
    """An agent client whose tool for each of `actions` records its params and returns "done"."""
    proctor = Client(gov.proctor.temporal, task_queue=gov.task_queue)
    calls: list[dict[str, Any]] = []
    for action in actions:

        @proctor.tool(action)
        async def run(params: dict[str, Any]) -> str:
            calls.append(params)
            return "done"

    return proctor, calls
