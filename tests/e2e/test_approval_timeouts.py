"""Approval deadlines are durable timers: days pass in moments on the time-skipping server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from tests.e2e.harness import Harness


async def test_unanswered_escalation_times_out_after_24h(
    gov_skipping: Harness, time_skipping: WorkflowEnvironment
) -> None:
    key = await gov_skipping.new_agent()
    calls: list[dict[str, Any]] = []

    async def handler(params: dict[str, Any]) -> None:
        calls.append(params)

    task = asyncio.create_task(gov_skipping.proctor.execute(
        key, "refund_requests", {"orderId": 5}, handler=handler, request_id=f"t-{key.agent_id}"))
    workflow_id = f"action-t-{key.agent_id}"
    await gov_skipping.wait_for_stage(workflow_id, "awaiting_approval")

    await time_skipping.sleep(timedelta(hours=23))
    assert not task.done()
    await time_skipping.sleep(timedelta(hours=2))
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.TIMED_OUT
    assert calls == []
    rows = await gov_skipping.audit.for_workflow(workflow_id)
    assert [r.event_type for r in rows] == [
        "decided", "escalated", "approval_timed_out", "trust_changed", "outcome"]


async def test_on_timeout_approve_runs_the_durable_tool_after_the_deadline(
    gov_skipping: Harness,
) -> None:
    key = await gov_skipping.new_agent()
    proctor = Client(gov_skipping.proctor.temporal, task_queue=gov_skipping.task_queue)
    calls: list[dict[str, Any]] = []

    @proctor.tool("payout")
    async def payout(params: dict[str, Any]) -> str:
        calls.append(params)
        return "paid"

    async with proctor.agent_worker(key.agent_id):
        # Waiting on the result lets the server skip the hour of the approval deadline.
        outcome = await proctor.execute(key, "payout", {"amount": 3})

    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.result == "paid"
    assert calls == [{"amount": 3}]
    rows = await gov_skipping.audit.for_workflow(outcome.workflow_id)
    assert "approval_timed_out" in [r.event_type for r in rows]
