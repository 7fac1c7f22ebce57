"""judge_request in an activity context, on real Postgres: identity, then policy, then rate
admission, for one signed request."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from proctor.identity import IdentityJudge
from proctor.models import (
    ActionRequest,
    Effect,
    ExecutionMode,
    ExecutionSpec,
    Judgement,
    JudgeRequest,
)
from proctor.policy import PolicyEngine
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from proctor.stores.nonces import NonceStore
from proctor.stores.rates import RateStore
from proctor_server.activities.judgement import JudgementActivities
from tests.helpers.agents import register_agent

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


@pytest.fixture
def judgement(db: asyncpg.Pool, engine: PolicyEngine) -> JudgementActivities:
    """Built as the worker builds it."""
    identity = IdentityJudge(AgentStore(db), NonceStore(db), 300.0, engine.trust_policy)
    return JudgementActivities(identity, lambda: engine, RateStore(db))


async def judge(
    activities: JudgementActivities,
    request: ActionRequest,
    *,
    run_id: str = "run-1",
    received_at: datetime | None = None,
) -> Judgement:
    ask = JudgeRequest(
        request=request,
        workflow_id=request.workflow_id,
        run_id=run_id,
        received_at=received_at or request.requested_at,
    )
    return await ActivityEnvironment().run(activities.judge_request, ask)


def signed(key: AgentKey, action: str, **params: str) -> ActionRequest:
    return key.new_request(action, dict(params), HANDLER)


async def test_an_allowed_request_is_verified_and_decided(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    result = await judge(judgement, signed(key, "read:orders", customer="42"))
    assert result.identity.verified and result.identity.agent is not None
    assert result.identity.agent.agent_id == key.agent_id
    assert result.decision is not None and result.decision.effect is Effect.ALLOW


async def test_a_denied_request_names_the_rule(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    result = await judge(judgement, signed(key, "delete:customer", customer="42"))
    assert result.identity.verified
    assert result.decision is not None
    assert (result.decision.effect, result.decision.rule_id) == (Effect.DENY, "no-deletes")


async def test_a_retried_judgement_of_the_same_run_gives_the_same_verdict(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    request = signed(await register_agent(db, "tester"), "read:orders")
    first = await judge(judgement, request)
    again = await judge(judgement, request)
    assert first.identity == again.identity and again.identity.verified
    assert again.decision is not None and again.decision.effect is Effect.ALLOW


async def test_a_copy_of_a_judged_request_is_refused_and_costs_the_agent_nothing(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    request = signed(await register_agent(db, "tester"), "read:orders")
    await judge(judgement, request)
    copy = await judge(judgement, request, run_id="another-run")
    assert not copy.identity.verified and copy.decision is None
    assert copy.identity.refusal == "replayed_request"
    assert not copy.identity.provable and copy.identity.trust is None


async def test_a_nonce_signed_into_a_second_request_is_refused_and_charged(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    first = signed(key, "read:orders")
    await judge(judgement, first)
    reuse = key.sign(
        first.model_copy(update={"request_id": "second-request", "action": "read:invoices"})
    )
    refused = await judge(judgement, reuse, run_id="run-2")
    assert not refused.identity.verified and refused.decision is None
    assert refused.identity.refusal == "replayed_nonce"
    assert refused.identity.provable and refused.identity.trust is not None


async def test_a_request_forged_in_the_agents_name_is_refused_unprovable(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    victim = await register_agent(db, "tester")
    forger = AgentKey.generate(victim.agent_id, "ed25519")  # not the registered key
    refused = await judge(judgement, signed(forger, "read:orders"))
    assert refused.identity.refusal == "bad_signature"
    assert not refused.identity.provable and refused.decision is None


async def test_over_the_rate_limit_the_decision_becomes_a_deny(
    judgement: JudgementActivities, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "limited")  # 3 actions a minute
    effects = []
    for _ in range(4):
        result = await judge(judgement, signed(key, "read:orders"))
        assert result.decision is not None
        effects.append((result.decision.effect, result.decision.rule_id))
    assert [effect for effect, _ in effects[:3]] == [Effect.ALLOW] * 3
    assert effects[3] == (Effect.DENY, "rate-limit")
