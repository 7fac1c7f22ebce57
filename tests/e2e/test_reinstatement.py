"""Reinstatement is its own durable workflow: owner or policy approvers decide, never the
requester; the agent returns at the recovery score, audited."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from proctor.models import AgentStatus
from proctor.stores.agents import AgentStore
from tests.helpers.harness import OWNER, Harness


async def suspended_agent(gov: Harness) -> str:
    key = await gov.new_agent()
    await AgentStore(gov.pool).set_status(key.agent_id, AgentStatus.SUSPENDED)
    return key.agent_id


async def test_owner_reinstates_after_the_requester_is_refused(gov: Harness) -> None:
    agent_id = await suspended_agent(gov)
    workflow_id = await gov.operator.request_reinstatement(
        agent_id, requested_by="alice@example.com", reason="false positive", restore_score=60
    )
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    pending = await gov.wait_until_listed(workflow_id)
    assert OWNER in pending.card.approvers
    assert "alice@example.com" in pending.card.approvers  # named in policy

    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await gov.vote(workflow_id, "mallory@example.com", approve=True)
    await gov.wait_until(workflow_id, lambda p: len(p.votes) == 2)
    record = await AgentStore(gov.pool).get(agent_id)
    assert record is not None and record.info.status is AgentStatus.SUSPENDED

    await gov.vote(workflow_id, OWNER, approve=True, note="checked the logs")
    outcome = await asyncio.wait_for(gov.operator.reinstatement_outcome(workflow_id), 30)

    assert outcome.status == "reinstated"
    assert [v.reason for v in outcome.votes] == [
        "the requester cannot decide their own request",
        "not the agent's owner nor an approver named in its policy",
        "approved",
    ]
    record = await AgentStore(gov.pool).get(agent_id)
    assert record is not None
    assert (record.info.status, record.info.trust_score) == (AgentStatus.ACTIVE, 60)
    rows = await gov.audit.for_workflow(workflow_id)
    assert [r.event_type for r in rows] == [
        "reinstatement_requested",
        "vote",
        "vote",
        "vote",
        "agent_reinstated",
    ]


async def test_only_suspended_agents_can_be_reinstated(gov: Harness) -> None:
    key = await gov.new_agent()
    workflow_id = await gov.operator.request_reinstatement(
        key.agent_id, requested_by="bob@example.com", reason="?"
    )
    outcome = await asyncio.wait_for(gov.operator.reinstatement_outcome(workflow_id), 30)
    assert outcome.status == "not_applicable"
    assert "is active, not suspended" in outcome.reason


async def test_unanswered_reinstatement_expires(
    gov_skipping: Harness, time_skipping: WorkflowEnvironment
) -> None:
    agent_id = await suspended_agent(gov_skipping)
    workflow_id = await gov_skipping.operator.request_reinstatement(
        agent_id, requested_by="bob@example.com", reason="please", decide_within=timedelta(days=7)
    )
    await gov_skipping.wait_for_stage(workflow_id, "awaiting_approval")
    await time_skipping.sleep(timedelta(days=7, minutes=1))
    outcome = await gov_skipping.operator.reinstatement_outcome(workflow_id)
    assert outcome.status == "expired"
    record = await AgentStore(gov_skipping.pool).get(agent_id)
    assert record is not None and record.info.status is AgentStatus.SUSPENDED
