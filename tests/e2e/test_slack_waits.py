"""Slack approvals over long waits, on the time-skipping server: reminders and ladder tiers
reach Slack at the right virtual times, a 14-day wait outlives its worker, and a Slack outage
never holds up a decision."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from proctor.approvals import blocks
from tests.helpers.fake_slack import FakeSlack, Message, click, send_interaction
from tests.helpers.harness import Harness, eventually, running_worker
from tests.helpers.slack import (
    DIRECTORY,
    SlackHarness,
    approvals_app,
    has_event,
    messages_about,
    slack_harness,
    slack_notifier,
)
from tests.helpers.tools import recording_tools, tool_request


@pytest.fixture
async def skipping(
    time_skipping: WorkflowEnvironment, pool: asyncpg.Pool, slack: FakeSlack
) -> AsyncIterator[SlackHarness]:
    async with slack_harness(time_skipping.client, pool, slack) as running:
        yield running


def about(slack: FakeSlack, workflow_id: str, *, thread: bool = False) -> list[Message]:
    if thread:
        parents = {(m.channel, m.ts) for m in about(slack, workflow_id)}
        return [m for m in slack.posted(thread=True) if (m.channel, m.thread_ts) in parents]
    return messages_about(slack, workflow_id)


async def test_reminders_and_ladder_reach_slack_on_time(
    skipping: SlackHarness, time_skipping: WorkflowEnvironment
) -> None:
    slack = skipping.slack
    key = await skipping.gov.new_agent()
    agent, _ = recording_tools(skipping.gov, "vendor_payment")
    request = tool_request(key, "vendor_payment", {"vendor": "acme", "amount": 900})
    async with agent.agent_worker(key.agent_id):
        handle = await agent.start(request)
        await eventually(lambda: len(about(slack, request.workflow_id)) == 2)  # channel + Alice
        assert about(slack, request.workflow_id, thread=True) == []

        await time_skipping.sleep(timedelta(minutes=61))
        await eventually(lambda: len(about(slack, request.workflow_id, thread=True)) == 2)
        assert all("Reminder 1" in m.text for m in about(slack, request.workflow_id, thread=True))

        await time_skipping.sleep(timedelta(hours=1))
        await eventually(lambda: len(about(slack, request.workflow_id, thread=True)) == 4)

        await time_skipping.sleep(timedelta(hours=1))  # 3h: finance leads join
        await eventually(lambda: len(about(slack, request.workflow_id)) == 4)
        joined = {m.channel for m in about(slack, request.workflow_id)}
        assert {slack.dm_channel("U0DAVE"), slack.dm_channel("U0ERIN")} <= joined
        await eventually(
            lambda: any("tier 1" in m.text for m in about(slack, request.workflow_id, thread=True))
        )

        dave = next(
            m for m in about(slack, request.workflow_id) if m.channel == slack.dm_channel("U0DAVE")
        )
        await send_interaction(skipping.url, click("U0DAVE", dave, blocks.APPROVE))
        # The app acks first and signals after: let the vote land before time may skip.
        await skipping.gov.wait_until(request.workflow_id, lambda p: len(p.votes) == 1)
        outcome = await handle.result()
    assert outcome.status is ActionStatus.COMPLETED
    rows = await skipping.gov.audit.for_workflow(request.workflow_id)
    steps = [r.event_type for r in rows]
    assert steps.count("reminder") == 2 and steps.count("ladder_step") == 1


async def test_a_fourteen_day_wait_outlives_its_worker(
    time_skipping: WorkflowEnvironment, pool: asyncpg.Pool, slack: FakeSlack
) -> None:
    gov = Harness(
        Client(time_skipping.client, task_queue=f"proctor-{uuid.uuid4().hex[:8]}"), pool, ""
    )
    gov.task_queue = gov.proctor.task_queue
    key = await gov.new_agent()
    agent, calls = recording_tools(gov, "long_wait")
    request = tool_request(key, "long_wait", {"batch": 3})
    async with (
        running_worker(
            time_skipping.client,
            pool,
            gov.task_queue,
            notifier=slack_notifier(slack),
            directory=DIRECTORY,
            sticky=False,
            vote_keys=gov.vote_keys,
        ),
        agent.agent_worker(key.agent_id),
    ):
        handle = await agent.start(request)
        await eventually(lambda: len(about(slack, request.workflow_id)) == 2)
        # Idle before the worker goes: its last step (auditing the notification) is done.
        await eventually(lambda: has_event(gov, request.workflow_id, "notified"))

    # No Proctor worker at all for 14 days; then a new one and a new approvals app take over.
    await time_skipping.sleep(timedelta(days=14))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    async with (
        running_worker(
            time_skipping.client,
            pool,
            gov.task_queue,
            notifier=slack_notifier(slack),
            directory=DIRECTORY,
            vote_keys=gov.vote_keys,
        ),
        agent.agent_worker(key.agent_id),
        approvals_app(gov, pool, slack) as url,
    ):
        message = next(m for m in about(slack, request.workflow_id) if m.channel == "C0LONGWAITS")
        await send_interaction(url, click("U0ALICE", message, blocks.APPROVE))
        await gov.wait_until(request.workflow_id, lambda p: len(p.votes) == 1)
        outcome = await handle.result()
        await eventually(
            lambda: all(
                not any(b["type"] == "actions" for b in m.blocks)
                for m in about(slack, request.workflow_id)
            )
        )
    assert outcome.status is ActionStatus.COMPLETED
    assert calls == [{"batch": 3}]


async def test_slack_down_during_escalation_loses_no_decision(
    skipping: SlackHarness, time_skipping: WorkflowEnvironment
) -> None:
    slack = skipping.slack
    slack.down = True
    key = await skipping.gov.new_agent()
    agent, calls = recording_tools(skipping.gov, "refund_requests")
    request = tool_request(key, "refund_requests", {"orderId": 99})
    async with agent.agent_worker(key.agent_id):
        handle = await agent.start(request)
        await skipping.gov.wait_for_stage(request.workflow_id, "awaiting_approval")
        await eventually(lambda: slack.calls.count("chat.postMessage") >= 2)
        assert slack.posted() == []
        await skipping.gov.vote(request.workflow_id, "bob@example.com", approve=True)
        outcome = await handle.result()
    assert outcome.status is ActionStatus.COMPLETED
    assert calls == [{"orderId": 99}]


async def test_a_timeout_closes_every_message(
    skipping: SlackHarness, time_skipping: WorkflowEnvironment
) -> None:
    slack = skipping.slack
    key = await skipping.gov.new_agent()
    agent, calls = recording_tools(skipping.gov, "refund_requests")
    request = tool_request(key, "refund_requests", {"orderId": 5})
    async with agent.agent_worker(key.agent_id):
        handle = await agent.start(request)
        await eventually(lambda: len(about(slack, request.workflow_id)) == 3)
        await eventually(lambda: has_event(skipping.gov, request.workflow_id, "notified"))
        await time_skipping.sleep(timedelta(hours=25))
        outcome = await handle.result()
    assert outcome.status is ActionStatus.TIMED_OUT and calls == []
    messages = about(slack, request.workflow_id)
    await eventually(lambda: all(m.updates == 1 for m in messages))
    assert all(
        "Timed out" in str(m.blocks) and not any(b["type"] == "actions" for b in m.blocks)
        for m in messages
    )
