"""Approvals through Slack, end to end: real Temporal, real Postgres, the real approvals app,
and a loopback stand-in for Slack's Web API that signs interactivity like Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey
from proctor.approvals import blocks
from proctor.models import Outcome
from tests.e2e.slack_harness import CHANNEL, SlackHarness, fake_slack, slack_harness
from tests.fakes.slack_web_api import FakeSlack, Message, click, send_interaction, submit


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with fake_slack() as running:
        yield running


@pytest.fixture
async def live(dev_server: WorkflowEnvironment, pool: asyncpg.Pool,
               slack: FakeSlack) -> AsyncIterator[SlackHarness]:
    async with slack_harness(dev_server.client, pool, slack) as running:
        yield running


async def escalate(live: SlackHarness, action: str, params: dict[str, Any], *,
                   messages: int, triggered_by: str | None = None,
                   ) -> tuple[AgentKey, asyncio.Task[Outcome], str]:
    """Start a handler-mode action that escalates; wait until its messages are out."""
    key = await live.gov.new_agent()
    request = key.new_request(action, params, _handler_spec(), triggered_by=triggered_by)
    task = asyncio.create_task(live.gov.proctor.submit(request, handler=_done))
    await until(lambda: len(_about(live, request.request_id)) >= messages)
    return key, task, request.workflow_id


async def _done(params: dict[str, Any]) -> str:
    return "done"


def _handler_spec() -> Any:
    from proctor.models import ExecutionMode, ExecutionSpec
    return ExecutionSpec(mode=ExecutionMode.HANDLER)


def _about(live: SlackHarness, request_id: str) -> list[Message]:
    return [m for m in live.requests_posted() if request_id in m.text or any(
        request_id in str(b) for b in m.blocks)]


async def until(condition: Any, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)


def dm_to(live: SlackHarness, user_id: str, workflow_id: str) -> Message:
    return next(m for m in live.requests_posted()
                if m.channel == live.slack.dm_channel(user_id) and workflow_id in str(m.blocks))


async def event_types(live: SlackHarness, workflow_id: str) -> list[str]:
    """The workflow's audit rows; the messages' closing runs beside the execution, so its row
    (which must be there) is left out of the order."""
    await until_async(lambda: _closed(live, workflow_id))
    rows = await live.gov.audit.for_workflow(workflow_id)
    return [r.event_type for r in rows if r.event_type != "messages_closed"]


async def _closed(live: SlackHarness, workflow_id: str) -> bool:
    rows = await live.gov.audit.for_workflow(workflow_id)
    return any(r.event_type == "messages_closed" for r in rows)


async def until_async(condition: Any, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.05)


def has_buttons(message: Message) -> bool:
    return any(b["type"] == "actions" for b in message.blocks)


async def test_approve_button_runs_the_action_and_updates_every_message(
        live: SlackHarness) -> None:
    key, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 7, "amount": 40},
                                            messages=3)
    messages = [m for m in live.requests_posted() if workflow_id in str(m.blocks)]
    assert sorted(m.channel for m in messages) == sorted([CHANNEL, "DU0ALICE", "DU0BOB"])
    assert all(has_buttons(m) for m in messages)

    response = await send_interaction(live.url, click("U0ALICE", dm_to(live, "U0ALICE",
                                                                        workflow_id),
                                                      blocks.APPROVE))
    assert response.status == 200
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED
    assert [(v.vote.approver, v.vote.channel, v.accepted) for v in outcome.approvals] == [
        ("alice@example.com", "slack", True)]
    await until(lambda: all(m.updates == 1 for m in messages))
    for message in messages:
        assert not has_buttons(message)
        assert "Approved" in str(message.blocks) and "alice@example.com" in str(message.blocks)
    assert await event_types(live, workflow_id) == [
        "decided", "escalated", "notified", "vote", "trust_changed", "outcome"]
    assert any(e["user"] == "U0ALICE" and "approved" in e["text"] for e in live.slack.ephemeral)
