"""judge_request with standing grants, on real Postgres and the real GrantStore: a covered
escalation is allowed as `grant:<id>` and the use is counted and audited once per run; a grant
never covers another agent, never overrides a deny, ends with its rule, and a row edited in
the database covers nothing its votes did not sign."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from proctor.approvals.keys import VoteKeyDirectory, VoteSigner
from proctor.canonical import digest
from proctor.contract import step_key
from proctor.delegation import sign_link
from proctor.identity import IdentityJudge
from proctor.metrics import GRANT_USES
from proctor.models import (
    ActionRequest,
    AuditEvent,
    Decision,
    Effect,
    ExecutionMode,
    ExecutionSpec,
    GrantDraft,
    GrantScope,
    Judgement,
    JudgeRequest,
)
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore
from proctor.stores.nonces import NonceStore
from proctor.stores.rates import RateStore
from proctor_server.activities.judgement import JudgementActivities
from tests.helpers.agents import register_agent
from tests.helpers.policies import engine

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)
HOUR = 3600.0
REFUNDS = """
permissions:
  deny:
    - {action: refund, id: no-big-refunds, when: "params.amount > 1000"}
  escalate:
    - {action: refund, id: refunds, approvers: [alice, bob], grant: {max: 8h}}
"""
REFUNDS_RENAMED = """
permissions:
  escalate:
    - {action: refund, id: refunds-v2, approvers: [alice, bob], grant: {max: 8h}}
"""


class Governance:
    """The judge as the worker builds it, with a policy that can be replaced (a reload)."""

    def __init__(self, db: asyncpg.Pool, keys: VoteKeyDirectory) -> None:
        self.policy = engine(REFUNDS)
        self.audit = AuditLog(db)
        self.grants = GrantStore(db, self.audit)
        self.keys = keys
        identity = IdentityJudge(
            AgentStore(db),
            NonceStore(db),
            300.0,
            lambda agent: self.policy.trust_policy(agent),
            approver_keys=keys.approver_keys,
        )
        self.judgement = JudgementActivities(
            identity,
            lambda: self.policy,
            RateStore(db),
            audit=self.audit,
            grants=self.grants,
            vote_keys=lambda: keys,
        )

    def approver(self, name: str) -> VoteSigner:
        signer = VoteSigner.generate(approver=name)
        self.keys.register_approver(name, signer.public_key_pem)
        return signer

    async def grant(
        self, key: AgentKey, approver: VoteSigner, *, max_uses: int | None = None
    ) -> str:
        """A grant as the workflow makes it once `approver` approved `key`'s refund."""
        made_on = key.new_request("refund", {"amount": 100}, HANDLER)
        scope = GrantScope(rule_id="refunds", duration_seconds=4 * HOUR, max_uses=max_uses)
        vote = approver.sign(
            workflow_id=made_on.workflow_id,
            request_digest=digest(made_on.signing_payload()),
            approve=True,
            grant=scope,
        )
        assert vote.signed_at is not None
        draft = GrantDraft(
            grant_id=f"g-{uuid.uuid4().hex[:12]}",
            workflow_id=made_on.workflow_id,
            run_id="run-0",
            policy_file="p.yaml",
            request=made_on,
            votes=(vote,),
            scope=scope,
            expires_at=vote.signed_at + timedelta(hours=4),
        )
        made = AuditEvent(
            idempotency_key=step_key(draft.workflow_id, draft.run_id, "grant"),
            event_type="grant_made",
            workflow_id=draft.workflow_id,
            agent_id=key.agent_id,
            action="refund",
            actor=approver.approver,
            payload={"grant_id": draft.grant_id},
        )
        await self.grants.make(draft, made)
        return draft.grant_id

    async def judge(self, request: ActionRequest, run_id: str = "run-1") -> Decision:
        ask = JudgeRequest(
            request=request,
            workflow_id=request.workflow_id,
            run_id=run_id,
            received_at=request.requested_at,
        )
        judged: Judgement = await ActivityEnvironment().run(self.judgement.judge_request, ask)
        assert judged.identity.verified and judged.decision is not None, judged.identity
        return judged.decision

    async def uses(self, grant_id: str) -> int:
        grant = await self.grants.get(grant_id)
        assert grant is not None
        return grant.uses

    async def use_rows(self, workflow_id: str) -> list[dict[str, object]]:
        rows = await self.audit.for_workflow(workflow_id, event_types=("grant_used",))
        return [json.loads(row.payload) for row in rows]


@pytest.fixture
def gov(db: asyncpg.Pool, tmp_path: Path) -> Governance:
    return Governance(db, VoteKeyDirectory(tmp_path / "vote-keys"))


def refund(key: AgentKey, amount: int = 250) -> ActionRequest:
    return key.new_request("refund", {"amount": amount}, HANDLER)


async def test_a_covered_escalation_is_allowed_under_the_grants_name(
    gov: Governance, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    grant_id = await gov.grant(key, gov.approver("alice"), max_uses=3)
    request = refund(key)
    counted = GRANT_USES.labels(rule="refunds")._value.get()

    decision = await gov.judge(request)

    assert (decision.effect, decision.rule_id) == (Effect.ALLOW, f"grant:{grant_id}")
    assert decision.also_matched == ("refunds",)
    assert decision.policy_version == gov.policy.version
    assert decision.reason.startswith(f"covered by standing grant {grant_id} made by alice")
    assert decision.reason.endswith(", 1 of 3 uses)")
    assert "(rule refunds, until " in decision.reason
    assert decision.escalation is None
    assert await gov.uses(grant_id) == 1
    (row,) = await gov.use_rows(request.workflow_id)
    assert (row["grant_id"], row["rule_id"], row["made_by"]) == (grant_id, "refunds", ["alice"])
    assert GRANT_USES.labels(rule="refunds")._value.get() == counted + 1
    assert (await gov.audit.verify()).intact


async def test_a_retried_judgement_uses_its_grant_once(gov: Governance, db: asyncpg.Pool) -> None:
    key = await register_agent(db, "tester")
    grant_id = await gov.grant(key, gov.approver("alice"), max_uses=1)
    request = refund(key)
    counted = GRANT_USES.labels(rule="refunds")._value.get()

    first = await gov.judge(request)
    retried = await gov.judge(request)

    assert first.rule_id == retried.rule_id == f"grant:{grant_id}"
    assert await gov.uses(grant_id) == 1
    assert GRANT_USES.labels(rule="refunds")._value.get() == counted + 1
    assert len(await gov.use_rows(request.workflow_id)) == 1
    exhausted = await gov.judge(refund(key), run_id="run-2")
    assert (exhausted.effect, exhausted.rule_id) == (Effect.ESCALATE, "refunds")


async def test_a_retry_never_moves_on_to_a_second_grant(gov: Governance, db: asyncpg.Pool) -> None:
    key = await register_agent(db, "tester")
    alice = gov.approver("alice")
    first_id = await gov.grant(key, alice, max_uses=1)
    second_id = await gov.grant(key, alice, max_uses=1)
    request = refund(key)

    first = await gov.judge(request)
    retried = await gov.judge(request)

    assert first.rule_id == retried.rule_id
    used = {first_id, second_id} - {first.rule_id.removeprefix("grant:")}
    assert [await gov.uses(grant) for grant in used] == [0]


async def test_another_agents_request_is_never_covered(gov: Governance, db: asyncpg.Pool) -> None:
    owner = await register_agent(db, "tester")
    other = await register_agent(db, "tester")
    grant_id = await gov.grant(owner, gov.approver("alice"))

    decision = await gov.judge(refund(other))

    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "refunds")
    assert await gov.uses(grant_id) == 0


async def test_a_grant_row_relabelled_in_the_database_covers_nothing(
    gov: Governance, db: asyncpg.Pool
) -> None:
    owner = await register_agent(db, "tester")
    other = await register_agent(db, "tester")
    grant_id = await gov.grant(owner, gov.approver("alice"))
    await db.execute(
        "UPDATE standing_grants SET agent_id = $2 WHERE grant_id = $1", grant_id, other.agent_id
    )

    decision = await gov.judge(refund(other))

    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "refunds")
    assert await gov.uses(grant_id) == 0


async def test_a_grant_row_planted_without_its_ledger_row_covers_nothing(
    gov: Governance, db: asyncpg.Pool
) -> None:
    """A copy of a genuine grant's row (signed votes and all) under a new id, as a database
    administrator could plant it: no round recorded it, so it covers nothing."""
    key = await register_agent(db, "tester")
    genuine = await gov.grant(key, gov.approver("alice"), max_uses=1)
    await db.execute(
        "UPDATE standing_grants SET uses = max_uses WHERE grant_id = $1", genuine
    )  # used up
    columns = await db.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'standing_grants' AND column_name NOT IN ('grant_id', 'uses')"
    )
    names = ", ".join(row["column_name"] for row in columns)
    await db.execute(
        f"INSERT INTO standing_grants (grant_id, uses, {names})"
        f" SELECT 'g-planted', 0, {names} FROM standing_grants WHERE grant_id = $1",
        genuine,
    )

    decision = await gov.judge(refund(key))

    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "refunds")
    assert await gov.uses("g-planted") == 0


async def test_a_genuine_grant_row_refilled_with_another_rounds_votes_covers_nothing(
    gov: Governance, db: asyncpg.Pool
) -> None:
    """A database administrator keeps a genuine grant's id and workflow column but puts in the
    signed request and grant-asking vote of a round that made no grant (say, one vetoed):
    the ledger is asked about the workflow the votes signed for, which recorded no grant."""
    key = await register_agent(db, "tester")
    genuine = await gov.grant(key, gov.approver("alice"))
    other = key.new_request("refund", {"amount": 100}, HANDLER)
    vote = gov.approver("bob").sign(
        workflow_id=other.workflow_id,
        request_digest=digest(other.signing_payload()),
        approve=True,
        grant=GrantScope(rule_id="refunds", duration_seconds=4 * HOUR),
    )
    await db.execute(
        "UPDATE standing_grants SET request = $2::json, votes = $3::json WHERE grant_id = $1",
        genuine,
        other.model_dump_json(),
        f"[{vote.model_dump_json()}]",
    )

    decision = await gov.judge(refund(key))

    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "refunds")
    assert await gov.uses(genuine) == 0


async def test_a_deny_rule_over_the_same_action_is_never_overridden(
    gov: Governance, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    grant_id = await gov.grant(key, gov.approver("alice"))

    decision = await gov.judge(refund(key, amount=5000))

    assert (decision.effect, decision.rule_id) == (Effect.DENY, "no-big-refunds")
    assert await gov.uses(grant_id) == 0


async def test_a_new_policy_without_the_rule_ends_the_cover(
    gov: Governance, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    grant_id = await gov.grant(key, gov.approver("alice"))
    gov.policy = engine(REFUNDS_RENAMED)

    decision = await gov.judge(refund(key))

    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "refunds-v2")
    assert await gov.uses(grant_id) == 0


async def test_a_vote_key_removed_from_the_directory_ends_the_cover(
    gov: Governance, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    grant_id = await gov.grant(key, gov.approver("alice"))
    for pem in (gov.keys.root / "approvers" / "alice").glob("*.pem"):
        pem.unlink()

    decision = await gov.judge(refund(key))

    assert decision.effect is Effect.ESCALATE
    assert await gov.uses(grant_id) == 0


async def test_a_revoked_grant_covers_nothing(gov: Governance, db: asyncpg.Pool) -> None:
    key = await register_agent(db, "tester")
    grant_id = await gov.grant(key, gov.approver("alice"))
    revoked = AuditEvent(
        idempotency_key=f"{grant_id}:revoked",
        event_type="grant_revoked",
        agent_id=key.agent_id,
        action="refund",
        actor="carol",
        payload={"grant_id": grant_id},
    )
    await gov.grants.revoke(grant_id, by="carol", reason="no longer needed", event=revoked)

    decision = await gov.judge(refund(key))

    assert decision.effect is Effect.ESCALATE
    assert await gov.uses(grant_id) == 0


async def test_a_request_made_on_a_grant_makers_behalf_is_not_covered_by_their_grant(
    gov: Governance, db: asyncpg.Pool
) -> None:
    key = await register_agent(db, "tester")
    alice = gov.approver("alice")
    grant_id = await gov.grant(key, alice)
    link = sign_link(
        alice,
        to=key.agent_id,
        actions=["refund"],
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    for_alice = key.new_request(
        "refund", {"amount": 250}, HANDLER, on_behalf_of="alice", delegation=[link]
    )

    decision = await gov.judge(for_alice)

    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "refunds")
    assert await gov.uses(grant_id) == 0
    assert (await gov.judge(refund(key), run_id="run-2")).rule_id == f"grant:{grant_id}"
