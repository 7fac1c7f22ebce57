"""Approval deadlines are durable timers: days pass in moments on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from tests.helpers.harness import Harness
from tests.helpers.tools import recording_tools, tool_request


async def test_unanswered_escalation_times_out_after_24h(
    gov_skipping: Harness, time_skipping: WorkflowEnvironment
) -> None:
    key = await gov_skipping.new_agent()
    agent, calls = recording_tools(gov_skipping, "refund_requests")
    request = tool_request(key, "refund_requests", {"orderId": 5})
    async with agent.agent_worker(key.agent_id):
        handle = await agent.start(request)
        await gov_skipping.wait_for_stage(request.workflow_id, "awaiting_approval")

        await time_skipping.sleep(timedelta(hours=23))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await time_skipping.sleep(timedelta(hours=2))
        outcome = await handle.result()

    assert outcome.status is ActionStatus.TIMED_OUT
    assert calls == []
    rows = await gov_skipping.audit.for_workflow(request.workflow_id)
    assert [r.event_type for r in rows] == [
        "decided",
        "escalated",
        "approval_timed_out",
        "trust_changed",
        "outcome",
    ]


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


async def test_reminders_and_ladder_tiers_fall_due_on_durable_timers(
    gov_skipping: Harness, time_skipping: WorkflowEnvironment
) -> None:
    key = await gov_skipping.new_agent()
    agent, calls = recording_tools(gov_skipping, "vendor_payment")
    request = tool_request(key, "vendor_payment", {"amount": 10})
    workflow_id = request.workflow_id
    async with agent.agent_worker(key.agent_id):
        handle = await agent.start(request)
        await gov_skipping.wait_for_stage(workflow_id, "awaiting_approval")

        await time_skipping.sleep(timedelta(hours=2, minutes=30))
        await gov_skipping.vote(workflow_id, "dave@example.com", approve=True)
        early = await gov_skipping.wait_until(workflow_id, lambda p: len(p.votes) == 1)
        assert early.votes[0].reason == "not an authorised approver for this rule"
        assert early.pending is not None
        assert early.pending.card.approvers == ("alice@example.com",)

        await time_skipping.sleep(timedelta(hours=1))
        joined = await gov_skipping.proctor.progress(workflow_id)
        assert joined.pending is not None
        assert joined.pending.card.approvers == (
            "alice@example.com",
            "dave@example.com",
            "erin@example.com",
        )
        await gov_skipping.vote(workflow_id, "dave@example.com", approve=True)
        outcome = await handle.result()

    assert outcome.status is ActionStatus.COMPLETED
    assert calls == [{"amount": 10}]
    rows = await gov_skipping.audit.for_workflow(workflow_id)
    assert [r.event_type for r in rows] == [
        "decided",
        "escalated",
        "reminder",
        "reminder",
        "vote",
        "ladder_step",
        "vote",
        "trust_changed",
        "outcome",
    ]
    assert '"pending_approvers":["alice@example.com"]' in rows[2].payload
    assert '"added":["dave@example.com","erin@example.com"]' in rows[5].payload
    assert outcome.decision.escalation is not None
    assert outcome.decision.escalation.severity == "high"


async def test_on_timeout_escalate_moves_up_the_ladder_then_times_out(
    gov_skipping: Harness, time_skipping: WorkflowEnvironment
) -> None:
    key = await gov_skipping.new_agent()
    agent, calls = recording_tools(gov_skipping, "night_payment")
    request = tool_request(key, "night_payment", {})
    workflow_id = request.workflow_id
    async with agent.agent_worker(key.agent_id):
        handle = await agent.start(request)
        await gov_skipping.wait_for_stage(workflow_id, "awaiting_approval")

        await time_skipping.sleep(timedelta(hours=2, minutes=5))
        escalated = await gov_skipping.proctor.progress(workflow_id)
        assert escalated.pending is not None
        assert escalated.pending.card.approvers == ("alice@example.com", "carol@example.com")
        await time_skipping.sleep(timedelta(hours=2))
        outcome = await handle.result()

    assert outcome.status is ActionStatus.TIMED_OUT
    assert calls == []
    rows = await gov_skipping.audit.for_workflow(workflow_id)
    assert [r.event_type for r in rows] == [
        "decided",
        "escalated",
        "ladder_step",
        "approval_timed_out",
        "trust_changed",
        "outcome",
    ]
    assert '"cause":"timeout"' in rows[2].payload
