"""judge_request with shadow rules, on real Postgres: the shadow decision is recorded next to
the enforced one, once per run, and never changes the enforced decision."""

from __future__ import annotations

import json

import asyncpg
from temporalio.testing import ActivityEnvironment

from proctor.identity import IdentityJudge
from proctor.metrics import SHADOW_DECISIONS
from proctor.models import (
    ActionRequest,
    Effect,
    ExecutionMode,
    ExecutionSpec,
    Judgement,
    JudgeRequest,
)
from proctor.policy import PolicyEngine
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor.stores.nonces import NonceStore
from proctor.stores.rates import RateStore
from proctor_server.activities.judgement import JudgementActivities
from tests.helpers.agents import register_agent
from tests.helpers.policies import engine

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)
ENFORCED = "permissions: {allow: ['refund:*', 'read:*']}"
TRIAL = "mode: shadow\npermissions: {deny: [{action: 'refund:*', id: trial-no-refunds}]}"


def activities(db: asyncpg.Pool, policy: PolicyEngine) -> JudgementActivities:
    """Built as the worker builds it (the worker's log also redacts; nothing here needs it)."""
    identity = IdentityJudge(AgentStore(db), NonceStore(db), 300.0, policy.trust_policy)
    return JudgementActivities(identity, lambda: policy, RateStore(db), audit=AuditLog(db))


async def judge(judgement: JudgementActivities, request: ActionRequest) -> Judgement:
    ask = JudgeRequest(
        request=request,
        workflow_id=request.workflow_id,
        run_id="run-1",
        received_at=request.requested_at,
    )
    return await ActivityEnvironment().run(judgement.judge_request, ask)


async def shadow_rows(db: asyncpg.Pool, workflow_id: str) -> list[dict[str, object]]:
    rows = await AuditLog(db).for_workflow(workflow_id, event_types=("shadow_decision",))
    return [json.loads(row.payload) for row in rows]


async def test_a_shadow_deny_is_recorded_once_across_a_retry_and_the_request_stays_allowed(
    db: asyncpg.Pool,
) -> None:
    judgement = activities(db, engine(ENFORCED, TRIAL))
    request = (await register_agent(db, "tester")).new_request("refund:order", {}, HANDLER)
    counted = SHADOW_DECISIONS.labels(agreement="disagree", rule="trial-no-refunds")
    before = counted._value.get()
    first = await judge(judgement, request)
    assert counted._value.get() == before + 1
    again = await judge(judgement, request)  # the activity retried
    assert counted._value.get() == before + 1  # counted once
    for result in (first, again):
        assert result.decision is not None and result.decision.effect is Effect.ALLOW
    assert await shadow_rows(db, request.workflow_id) == [
        {
            "agree": False,
            "enforced": {"effect": "allow", "rule_id": "p:allow:refund:*"},
            "rule": "trial-no-refunds",
            "shadow": {"effect": "deny", "rule_id": "trial-no-refunds"},
            "shadow_rules": ["trial-no-refunds"],
        }
    ]


async def test_a_retry_after_a_reload_keeps_the_first_shadow_decision(db: asyncpg.Pool) -> None:
    request = (await register_agent(db, "tester")).new_request("refund:order", {}, HANDLER)
    await judge(activities(db, engine(ENFORCED, TRIAL)), request)
    agreeing = TRIAL.replace("deny", "allow")
    again = await judge(activities(db, engine(ENFORCED, agreeing)), request)
    assert again.decision is not None and again.decision.effect is Effect.ALLOW
    (row,) = await shadow_rows(db, request.workflow_id)
    assert row["agree"] is False


async def test_nothing_is_recorded_where_no_shadow_rule_applies(db: asyncpg.Pool) -> None:
    judgement = activities(db, engine(ENFORCED, TRIAL))
    request = (await register_agent(db, "tester")).new_request("read:orders", {}, HANDLER)
    result = await judge(judgement, request)
    assert result.decision is not None and result.decision.effect is Effect.ALLOW
    assert await shadow_rows(db, request.workflow_id) == []
