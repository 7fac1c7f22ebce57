"""The operators' client on a real worker: what waits is listed soonest deadline first, a
silent workflow is named rather than hidden, and a vote binds to the request it answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from proctor.client import agent_task_queue
from proctor.contract import AGENT_ATTRIBUTE, GOVERNED_ACTION_WORKFLOW, STATUS_ATTRIBUTE
from proctor.errors import NotFoundError
from proctor.models import (
    ActionRequest,
    ActionStatus,
    ExecutionMode,
    ExecutionSpec,
    GovernedActionInput,
    PendingApproval,
)
from proctor.signing import AgentKey
from tests.helpers.harness import Harness


@pytest.fixture
async def left_waiting(gov: Harness) -> AsyncIterator[list[str]]:
    """Ids of the workflows a test leaves waiting, terminated once it ends: the dev server is
    shared, and a later unfiltered listing would wait on each one whose worker is gone."""
    workflow_ids: list[str] = []
    yield workflow_ids
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):
            await gov.proctor.temporal.get_workflow_handle(workflow_id).terminate()


async def waiting(
    gov: Harness, key: AgentKey, action: str, left_waiting: list[str]
) -> ActionRequest:
    """A tool-mode request for `action` (escalated by tests/e2e/policies/tester.yaml), left
    waiting for approval."""
    spec = ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id))
    request = key.new_request(action, {"amount": 10}, spec)
    left_waiting.append(request.workflow_id)
    await gov.proctor.start(request)
    await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
    return request


async def listed(gov: Harness, agent_id: str, count: int) -> list[PendingApproval]:
    """Visibility is eventually consistent: poll until `count` of the agent's requests show."""
    async with asyncio.timeout(30):
        while True:
            found = await gov.operator.pending_approvals(agent=agent_id)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)


async def test_pending_approvals_come_soonest_deadline_first(
    gov: Harness, left_waiting: list[str]
) -> None:
    key = await gov.new_agent()
    refund = await waiting(gov, key, "refund_requests", left_waiting)  # decided within 24h
    payout = await waiting(gov, key, "payout", left_waiting)  # within 1h

    found = await listed(gov, key.agent_id, 2)

    assert [p.card.workflow_id for p in found] == [payout.workflow_id, refund.workflow_id]
    assert found[0].card.deadline < found[1].card.deadline
    assert await gov.operator.pending_approvals(agent=key.agent_id, action="payout") == found[:1]


async def test_a_workflow_no_worker_answers_is_named_not_hidden(
    gov: Harness, left_waiting: list[str]
) -> None:
    key = await gov.new_agent()
    answered = await waiting(gov, key, "refund_requests", left_waiting)
    spec = ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id))
    orphan = key.new_request("refund_requests", {}, spec)
    left_waiting.append(orphan.workflow_id)
    await gov.proctor.temporal.start_workflow(
        GOVERNED_ACTION_WORKFLOW,
        GovernedActionInput(request=orphan),
        id=orphan.workflow_id,
        task_queue=f"{gov.task_queue}-nobody-polls-this",
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(AGENT_ATTRIBUTE, key.agent_id),
                SearchAttributePair(STATUS_ATTRIBUTE, "awaiting_approval"),
            ]
        ),
    )
    async with asyncio.timeout(60):
        while True:
            pending, silent = await gov.operator.pending_approvals_report(
                agent=key.agent_id, answer_within=timedelta(seconds=1)
            )
            if pending and silent:
                break
            await asyncio.sleep(0.1)

    assert [p.card.workflow_id for p in pending] == [answered.workflow_id]
    assert silent == [orphan.workflow_id]


async def test_a_vote_without_a_digest_binds_to_the_request_waiting_now(
    gov: Harness, left_waiting: list[str]
) -> None:
    key = await gov.new_agent()
    request = await waiting(gov, key, "refund_requests", left_waiting)
    pending = (await gov.proctor.progress(request.workflow_id)).pending
    assert pending is not None

    vote = await gov.operator.decide(
        request.workflow_id, gov.approver("alice@example.com"), approve=False, note="no"
    )

    assert vote.request_digest == pending.card.request_digest
    outcome = await asyncio.wait_for(gov.proctor.outcome(request.request_id), 30)
    assert outcome.status is ActionStatus.REJECTED


async def test_deciding_what_does_not_wait_is_refused_before_anything_is_signed(
    gov: Harness, left_waiting: list[str]
) -> None:
    key = await gov.new_agent()
    request = await waiting(gov, key, "refund_requests", left_waiting)
    await gov.vote(request.workflow_id, "alice@example.com", approve=False, note="no")
    await gov.wait_for_stage(request.workflow_id, "closed")

    with pytest.raises(NotFoundError, match="is not waiting for approval") as refused:
        await gov.operator.decide(
            request.workflow_id, gov.approver("bob@example.com"), approve=True
        )

    assert isinstance(refused.value, LookupError)  # what callers caught before
    assert len((await gov.proctor.progress(request.workflow_id)).votes) == 1
