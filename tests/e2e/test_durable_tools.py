"""Durable tools: the workflow runs the agent's tool as an activity on the agent's task queue."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from proctor.canonical import digest
from proctor.client import agent_task_queue
from proctor.models import ExecutionMode, ExecutionSpec
from tests.helpers.harness import Harness, running_worker


def tool_client(gov: Harness, calls: list[dict[str, Any]], fail_times: int = 0) -> Client:
    """A fresh agent process: its own Client with the tools registered."""
    proctor = Client(gov.proctor.temporal, task_queue=gov.task_queue)
    failures = {"left": fail_times}

    @proctor.tool("tool:refund")
    async def refund(params: dict[str, Any]) -> dict[str, Any]:
        calls.append(params)
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("bank API timed out")
        return {"refunded": params["amount"]}

    @proctor.tool("tool:escalated_refund")
    async def escalated_refund(params: dict[str, Any]) -> dict[str, Any]:
        calls.append(params)
        return {"refunded": params["amount"]}

    return proctor


async def test_allowed_tool_runs_on_agent_queue_with_retries(gov: Harness) -> None:
    key = await gov.new_agent()
    calls: list[dict[str, Any]] = []
    proctor = tool_client(gov, calls, fail_times=1)

    async with proctor.agent_worker(key.agent_id):
        outcome = await proctor.execute(key, "tool:refund", {"amount": 5})

    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.result == {"refunded": 5}
    assert len(calls) == 2  # one transient failure, retried by Temporal


async def test_tool_that_keeps_failing_ends_failed(gov: Harness) -> None:
    key = await gov.new_agent()
    calls: list[dict[str, Any]] = []
    proctor = tool_client(gov, calls, fail_times=10)

    async with proctor.agent_worker(key.agent_id):
        outcome = await proctor.execute(key, "tool:refund", {"amount": 5}, max_attempts=2)

    assert outcome.status is ActionStatus.FAILED
    assert outcome.error is not None and "bank API timed out" in outcome.error
    assert len(calls) == 2


async def test_tool_survives_agent_and_worker_restart_while_waiting(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    """The agent process and the Proctor worker both stop during the approval wait; the vote
    arrives while nothing runs; new processes pick the action up and the tool runs once."""
    task_queue = f"proctor-restart-{uuid.uuid4().hex[:8]}"
    gov = Harness(Client(dev_server.client, task_queue=task_queue), pool, task_queue)
    key = await gov.new_agent()
    first_calls: list[dict[str, Any]] = []
    first_agent = tool_client(gov, first_calls)
    request = key.new_request(
        "tool:escalated_refund",
        {"amount": 42},
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id)),
    )

    async with (
        running_worker(dev_server.client, pool, task_queue, vote_keys=gov.vote_keys),
        first_agent.agent_worker(key.agent_id),
    ):
        waiting = asyncio.create_task(first_agent.submit(request))
        await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
        waiting.cancel()
    # Both processes are gone. The approval is delivered to Temporal all the same.
    # (the digest is on the approval card; nothing is running to ask)
    await gov.vote(
        request.workflow_id,
        "bob@example.com",
        approve=True,
        request_digest=digest(request.signing_payload()),
    )
    description = await dev_server.client.get_workflow_handle(request.workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING

    restarted_calls: list[dict[str, Any]] = []
    restarted_agent = tool_client(gov, restarted_calls)
    async with (
        running_worker(dev_server.client, pool, task_queue, vote_keys=gov.vote_keys),
        restarted_agent.agent_worker(key.agent_id),
    ):
        outcome = await asyncio.wait_for(restarted_agent.outcome(request.request_id), 30)

    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.result == {"refunded": 42}
    assert restarted_calls == [{"amount": 42}]
    assert first_calls == []
