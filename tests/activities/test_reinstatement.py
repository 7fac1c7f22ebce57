"""plan_reinstatement / reinstate_agent in an activity context, on real Postgres: who must
approve bringing a suspended agent back, and the status change with its audit row as one."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from proctor.models import (
    AgentStatus,
    Reinstatement,
    ReinstatementPlan,
    ReinstatementRequest,
)
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor_server.activities.reinstatement import FALLBACK_SCORE, ReinstatementActivities
from tests.helpers.agents import register_agent
from tests.helpers.harness import OWNER


@pytest.fixture
def reinstatement(db: asyncpg.Pool, engine: PolicyEngine) -> ReinstatementActivities:
    return ReinstatementActivities(AgentStore(db), AuditLog(db), lambda: engine)


async def suspended_agent(db: asyncpg.Pool) -> str:
    key = await register_agent(db, "tester")
    await AgentStore(db).set_status(key.agent_id, AgentStatus.SUSPENDED)
    return key.agent_id


async def plan(
    activities: ReinstatementActivities, agent_id: str, restore_score: float | None = None
) -> ReinstatementPlan:
    request = ReinstatementRequest(
        agent_id=agent_id, requested_by=OWNER, reason="fixed", restore_score=restore_score
    )
    return await ActivityEnvironment().run(activities.plan_reinstatement, request)


async def test_a_suspended_agent_is_planned_for_its_owner_then_its_policy_approvers(
    reinstatement: ReinstatementActivities, db: asyncpg.Pool, engine: PolicyEngine
) -> None:
    agent_id = await suspended_agent(db)
    planned = await plan(reinstatement, agent_id)
    assert planned.problem is None and planned.agent is not None
    assert planned.agent.status is AgentStatus.SUSPENDED
    policy_approvers = engine.approvers_for(planned.agent)
    assert OWNER in policy_approvers  # named by the policy too, yet asked once, first
    assert planned.approvers == (OWNER, *(a for a in policy_approvers if a != OWNER))
    assert planned.restore_score == FALLBACK_SCORE  # the tester role sets no recovery score
    assert (await plan(reinstatement, agent_id, restore_score=70)).restore_score == 70


async def test_the_default_approvers_may_reinstate_an_agent_whose_policy_leaves_rules_to_them(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    """The toolkit's file names no approvers: its escalations go to the default approvers, and
    so does bringing its agent back (with its owner); a policy naming its approvers everywhere
    leaves the defaults out."""
    defaults = ("dana@example.com", "erin@example.com")
    (tmp_path / "toolkit.yaml").write_text(
        "role: tester\npermissions: {escalate: [refund_requests], allow: [read]}\n"
    )
    toolkit = PolicyEngine(load_policy_dir(tmp_path))
    activities = ReinstatementActivities(
        AgentStore(db), AuditLog(db), lambda: toolkit, lambda: defaults
    )

    planned = await plan(activities, await suspended_agent(db))

    assert planned.approvers == (OWNER, *defaults)
    (tmp_path / "toolkit.yaml").write_text(
        "role: tester\npermissions:\n"
        "  escalate: [{action: refund_requests, approvers: [lead@x.io]}]\n"
    )
    named = PolicyEngine(load_policy_dir(tmp_path))
    activities = ReinstatementActivities(
        AgentStore(db), AuditLog(db), lambda: named, lambda: defaults
    )
    assert (await plan(activities, await suspended_agent(db))).approvers == (OWNER, "lead@x.io")


async def test_nothing_to_plan_for_an_active_or_unknown_agent(
    reinstatement: ReinstatementActivities, db: asyncpg.Pool
) -> None:
    active = await register_agent(db, "tester")
    assert (await plan(reinstatement, active.agent_id)).problem == (
        f"agent {active.agent_id!r} is active, not suspended"
    )
    unknown = await plan(reinstatement, "agent-nobody")
    assert unknown.agent is None and unknown.problem == "no agent 'agent-nobody'"


async def test_reinstating_restores_the_agent_and_writes_one_row_however_often_retried(
    reinstatement: ReinstatementActivities, db: asyncpg.Pool
) -> None:
    agent_id = await suspended_agent(db)
    order = Reinstatement(
        agent_id=agent_id, workflow_id=f"reinstate-{agent_id}", approver=OWNER, score=60
    )
    first = await ActivityEnvironment().run(reinstatement.reinstate_agent, order)
    retried = await ActivityEnvironment().run(reinstatement.reinstate_agent, order)
    assert retried == first
    record = await AgentStore(db).get(agent_id)
    assert record is not None
    assert (record.info.status, record.info.trust_score) == (AgentStatus.ACTIVE, 60)
    rows = await AuditLog(db).for_workflow(order.workflow_id)
    assert [(r.event_type, r.actor, r.seq) for r in rows] == [
        ("agent_reinstated", OWNER, first.seq)
    ]
