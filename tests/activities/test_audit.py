"""Trust changes on real Postgres: atomic under concurrency, suspension at 0, recovery."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from proctor.models import AgentStatus, AuditEvent, OutcomeRecord, TrustChange
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor_server.activities.audit import AuditActivities


async def new_agent(pool: asyncpg.Pool, trust: float = 100.0) -> str:
    key = AgentKey.generate(f"trust-{uuid.uuid4().hex[:8]}")
    await AgentStore(pool).register(
        key.agent_id,
        role="r",
        owner="o@example.com",
        public_key_pem=key.public_key_pem,
        trust_score=trust,
    )
    return key.agent_id


def outcome(
    agent_id: str,
    step: str,
    delta: float,
    minimum: float | None = None,
    recovery: float | None = None,
) -> OutcomeRecord:
    return OutcomeRecord(
        event=AuditEvent(
            idempotency_key=f"wf-{agent_id}-{step}:outcome",
            event_type="outcome",
            workflow_id=f"wf-{agent_id}-{step}",
            agent_id=agent_id,
            action="x",
            payload={"step": step},
        ),
        trust=TrustChange(
            agent_id=agent_id,
            delta=delta,
            cause="test",
            minimum_score=minimum,
            recovery_threshold=recovery,
        ),
    )


async def score(pool: asyncpg.Pool, agent_id: str) -> float:
    record = await AgentStore(pool).get(agent_id)
    assert record is not None
    return record.info.trust_score


async def test_200_concurrent_outcomes_leave_exactly_the_arithmetic(pool: asyncpg.Pool) -> None:
    agent_id = await new_agent(pool, trust=50)
    audit = AuditActivities(AuditLog(pool))
    deltas = [+1.0 if i % 2 else -0.5 for i in range(200)]  # never reaches a bound
    await asyncio.gather(
        *(audit.record_outcome(outcome(agent_id, str(i), d)) for i, d in enumerate(deltas))
    )
    assert await score(pool, agent_id) == 50 + sum(deltas)
    # Retried steps (same idempotency keys) change nothing.
    await asyncio.gather(
        *(audit.record_outcome(outcome(agent_id, str(i), d)) for i, d in enumerate(deltas[:50]))
    )
    assert await score(pool, agent_id) == 50 + sum(deltas)
    assert (await AuditLog(pool).verify()).intact


async def test_reaching_zero_suspends_the_agent_and_audits_it(pool: asyncpg.Pool) -> None:
    agent_id = await new_agent(pool, trust=15)
    audit = AuditActivities(AuditLog(pool))
    await audit.record_outcome(outcome(agent_id, "a", -10))
    record = await AgentStore(pool).get(agent_id)
    assert record is not None and record.info.status is AgentStatus.ACTIVE
    await audit.record_outcome(outcome(agent_id, "b", -10))
    record = await AgentStore(pool).get(agent_id)
    assert record is not None
    assert (record.info.trust_score, record.info.status) == (0, AgentStatus.SUSPENDED)
    rows = await AuditLog(pool).for_workflow(f"wf-{agent_id}-b")
    assert [r.event_type for r in rows] == ["trust_changed", "agent_suspended", "outcome"]


async def test_autonomy_stays_blocked_until_the_recovery_threshold(pool: asyncpg.Pool) -> None:
    agent_id = await new_agent(pool, trust=72)
    audit = AuditActivities(AuditLog(pool))

    async def step(name: str, delta: float) -> bool:
        await audit.record_outcome(outcome(agent_id, name, delta, minimum=70, recovery=80))
        record = await AgentStore(pool).get(agent_id)
        assert record is not None
        return record.info.autonomy_blocked

    assert await step("1", -5) is True  # 67 < 70
    assert await step("2", +5) is True  # 72: above the minimum, below recovery
    assert await step("3", +7) is True  # 79: not yet recovered
    assert await step("4", +1) is False  # 80: recovered


def test_forged_request_sources_are_bounded() -> None:
    """The source label is whatever identity the starter chose: bounded in length and in
    distinct values, so a flood of made-up identities can't grow the metric without end."""
    from proctor import metrics

    made_up = [metrics.forged_source(f"mallory-{i}-" + "x" * 200) for i in range(300)]
    assert all(len(label) <= 64 for label in made_up)
    assert len(set(made_up)) <= metrics.MAX_FORGED_SOURCES + 1
    assert made_up[-1] == "other"
    assert metrics.forged_source(None) in ("unknown", "other")
