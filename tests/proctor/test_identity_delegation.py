"""IdentityJudge on a delegated request, on real Postgres: the chain is judged after the
request is proven the agent's own, against keys from the agent store and the approver keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from proctor.approvals.keys import VoteSigner
from proctor.delegation import sign_link
from proctor.identity import IdentityJudge
from proctor.models import (
    ActionRequest,
    AgentStatus,
    DelegationLink,
    DelegationView,
    ExecutionMode,
    ExecutionSpec,
    IdentityVerdict,
    TrustPolicy,
)
from proctor.settings import ProctorSettings
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from proctor.stores.nonces import NonceStore

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)
HOUR = timedelta(hours=1)
ALICE = VoteSigner.generate(approver="alice")


@pytest.fixture
def pool(private_database: tuple[asyncpg.Pool, str]) -> asyncpg.Pool:
    return private_database[0]


@pytest.fixture
def judge(pool: asyncpg.Pool) -> IdentityJudge:
    """As the worker builds it: alice's approver key is in the trusted directory."""
    keys = {"alice": (ALICE.public_key_pem,)}
    return IdentityJudge(
        AgentStore(pool),
        NonceStore(pool),
        300.0,
        lambda _: TrustPolicy(),
        approver_keys=lambda name: keys.get(name, ()),
        max_delegation_depth=2,
    )


async def agent(pool: asyncpg.Pool, name: str) -> AgentKey:
    key = AgentKey.generate(f"{name}-{uuid.uuid4().hex[:8]}")
    await AgentStore(pool).register(
        key.agent_id, role="tester", owner="owner@example.com", public_key_pem=key.public_key_pem
    )
    return key


def grant(
    signer: AgentKey | VoteSigner, to: AgentKey, actions: tuple[str, ...] = ("refund_*",)
) -> DelegationLink:
    """From the last full hour but one to the next but one: the same for every link of a test."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return sign_link(
        signer, to=to.agent_id, actions=actions, expires_at=hour + 2 * HOUR, issued_at=hour - HOUR
    )


def delegated(requester: AgentKey, *chain: DelegationLink) -> ActionRequest:
    return requester.new_request(
        "refund_small", {}, HANDLER, on_behalf_of=chain[0].principal, delegation=chain
    )


async def judged(judge: IdentityJudge, request: ActionRequest) -> IdentityVerdict:
    return await judge.judge(
        request, workflow_id=request.workflow_id, run_id="run-1", received_at=datetime.now(UTC)
    )


async def test_a_verified_chain_is_shown_to_policy(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    a, b = await agent(pool, "planner"), await agent(pool, "refunds")
    verdict = await judged(judge, delegated(b, grant(ALICE, a), grant(a, b)))
    assert verdict.verified and verdict.refusal is None
    assert verdict.delegation == DelegationView(
        chain=("alice", f"agent:{a.agent_id}", f"agent:{b.agent_id}"), depth=2, root="alice"
    )


async def test_a_request_without_a_chain_has_no_delegation(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    b = await agent(pool, "refunds")
    verdict = await judged(judge, b.new_request("refund_small", {}, HANDLER))
    assert verdict.verified and verdict.delegation is None


async def test_a_widened_link_is_refused_and_charged_to_the_requester_only(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    a, b = await agent(pool, "planner"), await agent(pool, "refunds")
    chain = (grant(ALICE, a, ("refund_small",)), grant(a, b, ("refund_*",)))
    verdict = await judged(judge, delegated(b, *chain))
    assert not verdict.verified and verdict.refusal == "bad_delegation"
    assert verdict.detail is not None and "link 2" in verdict.detail
    assert "wider" in verdict.detail
    assert verdict.provable and verdict.trust is not None
    assert verdict.agent is not None and verdict.agent.agent_id == b.agent_id


@pytest.mark.parametrize("status", [AgentStatus.SUSPENDED, AgentStatus.REVOKED])
async def test_a_link_of_an_agent_no_longer_active_is_refused(
    judge: IdentityJudge, pool: asyncpg.Pool, status: AgentStatus
) -> None:
    a, b = await agent(pool, "planner"), await agent(pool, "refunds")
    await AgentStore(pool).set_status(a.agent_id, status)
    verdict = await judged(judge, delegated(b, grant(ALICE, a), grant(a, b)))
    assert verdict.refusal == "bad_delegation" and verdict.detail is not None
    assert f"not signed by a key of agent:{a.agent_id}" in verdict.detail


async def test_an_unregistered_delegator_is_refused(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    b = await agent(pool, "refunds")
    ghost = AgentKey.generate("ghost-agent")
    verdict = await judged(judge, delegated(b, grant(ghost, b)))
    assert verdict.refusal == "bad_delegation"


async def test_a_human_without_approver_keys_cannot_root_a_chain(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    b = await agent(pool, "refunds")
    mallory = VoteSigner.generate(approver="mallory")
    verdict = await judged(judge, delegated(b, grant(mallory, b)))
    assert verdict.refusal == "bad_delegation" and verdict.detail is not None
    assert "not signed by a key of mallory" in verdict.detail


async def test_the_configured_depth_limits_the_chain(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    a, c, b = [await agent(pool, n) for n in ("planner", "helper", "refunds")]
    verdict = await judged(judge, delegated(b, grant(ALICE, a), grant(a, c), grant(c, b)))
    assert verdict.refusal == "bad_delegation" and verdict.detail is not None
    assert "maximum of 2" in verdict.detail


async def test_a_claim_without_a_chain_is_refused(judge: IdentityJudge, pool: asyncpg.Pool) -> None:
    b = await agent(pool, "refunds")
    verdict = await judged(judge, b.new_request("refund_small", {}, HANDLER, on_behalf_of="alice"))
    assert verdict.refusal == "bad_delegation" and verdict.provable


async def test_a_forged_request_with_a_bad_chain_is_judged_as_forged(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    """Nothing is held against the named agent before its signature is proven."""
    b = await agent(pool, "refunds")
    forger = AgentKey.generate(b.agent_id)
    verdict = await judged(judge, delegated(forger, grant(forger, b)))
    assert verdict.refusal == "bad_signature" and not verdict.provable


async def test_a_copy_of_a_delegated_request_is_a_copy(
    judge: IdentityJudge, pool: asyncpg.Pool
) -> None:
    a, b = await agent(pool, "planner"), await agent(pool, "refunds")
    request = delegated(b, grant(ALICE, a), grant(a, b))
    assert (await judged(judge, request)).verified
    copy = await judge.judge(
        request, workflow_id=request.workflow_id, run_id="run-2", received_at=datetime.now(UTC)
    )
    assert copy.refusal == "replayed_request" and not copy.provable


def test_the_maximum_depth_setting_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProctorSettings().max_delegation_depth == 3
    monkeypatch.setenv("PROCTOR_MAX_DELEGATION_DEPTH", "5")
    assert ProctorSettings().max_delegation_depth == 5
    for bad in ("0", "17"):
        monkeypatch.setenv("PROCTOR_MAX_DELEGATION_DEPTH", bad)
        with pytest.raises(ValidationError):
            ProctorSettings()
