"""Rate limits on real Postgres: exact under concurrency, idempotent per request."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from proctor.models import RateCheck, RateLimit
from proctor.stores.rates import RateStore

PER_MINUTE = RateLimit(
    name="actions_per_minute", limit=5, window_seconds=60, counts="actions", policy_file="p.yaml"
)
ESCALATIONS = RateLimit(
    name="escalations_per_hour",
    limit=1,
    window_seconds=3600,
    counts="escalations",
    policy_file="p.yaml",
)
CREDITS = RateLimit(
    name="credits_per_day",
    limit=2,
    window_seconds=86400,
    counts="matching",
    match="credit",
    policy_file="p.yaml",
)


def check(
    agent: str, action: str = "read:x", escalated: bool = False, request_id: str | None = None
) -> RateCheck:
    return RateCheck(
        agent_id=agent,
        request_id=request_id or uuid.uuid4().hex,
        action=action,
        escalated=escalated,
        limits=(PER_MINUTE, ESCALATIONS, CREDITS),
    )


async def test_concurrent_requests_never_exceed_the_limit(pool: asyncpg.Pool) -> None:
    agent = f"rate-{uuid.uuid4().hex[:8]}"
    verdicts = await asyncio.gather(*(RateStore(pool).admit(check(agent)) for _ in range(20)))
    assert sum(v.admitted for v in verdicts) == 5
    refused = next(v for v in verdicts if not v.admitted)
    assert refused.exceeded == "actions_per_minute (5) reached in p.yaml"


async def test_a_retried_request_counts_once(pool: asyncpg.Pool) -> None:
    agent = f"rate-{uuid.uuid4().hex[:8]}"
    store = RateStore(pool)
    for _ in range(10):
        assert (await store.admit(check(agent, request_id="same"))).admitted
    assert sum([(await store.admit(check(agent))).admitted for _ in range(5)]) == 4


async def test_escalation_and_named_limits_count_only_their_actions(pool: asyncpg.Pool) -> None:
    agent = f"rate-{uuid.uuid4().hex[:8]}"
    store = RateStore(pool)
    assert (await store.admit(check(agent, "refund", escalated=True))).admitted
    second = await store.admit(check(agent, "refund", escalated=True))
    assert second.exceeded == "escalations_per_hour (1) reached in p.yaml"
    assert (await store.admit(check(agent, "read:y"))).admitted  # not an escalation
    assert (await store.admit(check(agent, "issue:credit"))).admitted
    assert (await store.admit(check(agent, "Issue:Credit_note"))).admitted
    third = await store.admit(check(agent, "issue:credit"))
    assert third.exceeded == "credits_per_day (2) reached in p.yaml"
