"""Delegation end to end (real worker, Temporal and Postgres): alice grants agent A refunds
with her approver key, A passes a narrower grant to agent B, and B's refund runs on alice's
behalf: policy sees the verified chain, nobody in it approves, another human does. A chain
that does not hold refuses the request as `bad_delegation`, charged to B alone
(tests/e2e/policies/delegation.yaml, agents of role `delegated`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey
from proctor.approvals.blocks import approval_request
from proctor.delegation import extend_chain, sign_link
from proctor.models import DelegationLink, Outcome
from proctor.stores.agents import AgentStore
from tests.helpers.cli import arun
from tests.helpers.harness import POLICY_DIR, Harness

ALICE, BOB = "alice@example.com", "bob@example.com"
HOUR = timedelta(hours=1)


async def trust(gov: Harness, key: AgentKey) -> float:
    record = await AgentStore(gov.pool).get(key.agent_id)
    assert record is not None
    return record.info.trust_score


async def alice_to_a_to_b(gov: Harness) -> tuple[AgentKey, AgentKey, tuple[DelegationLink, ...]]:
    """Agents A and B, and the chain alice → A (refund_*) → B (refund_big)."""
    a, b = await gov.new_agent(role="delegated"), await gov.new_agent(role="delegated")
    root = extend_chain(gov.approver(ALICE), to=a.agent_id, actions=["refund_*"], expires_in=HOUR)
    return a, b, a.delegate(b.agent_id, ["refund_big"], expires_in=HOUR, parent=root)


async def test_a_request_on_alices_behalf_is_decided_by_someone_outside_the_chain(
    gov: Harness, database_dsn: str, dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    a, b, chain = await alice_to_a_to_b(gov)
    ran: list[dict[str, Any]] = []
    task = asyncio.create_task(
        gov.proctor.execute(
            b, "refund_big", {"order": 7}, handler=ran.append, on_behalf_of=ALICE, delegation=chain
        )
    )
    pending = await gov.wait_until_listed(f"action-{await _request_id(gov, b)}")
    principals = (ALICE, f"agent:{a.agent_id}", f"agent:{b.agent_id}")
    assert pending.card.rule_id == "delegated-refunds", "policy saw depth 2 and root alice"
    assert pending.card.delegation_chain == principals
    assert " → ".join(principals) in json.dumps(
        approval_request(pending.card, {}), ensure_ascii=False
    )
    shown = await _approvals_show(gov, pending.card.workflow_id, database_dsn, dev_server, tmp_path)
    assert f"on behalf of {' → '.join(principals)}" in shown

    await gov.vote(pending.card.workflow_id, ALICE, approve=True)
    await gov.vote(pending.card.workflow_id, BOB, approve=True)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and ran == [{"order": 7}]
    assert [(v.vote.approver, v.accepted, v.reason) for v in outcome.approvals] == [
        (ALICE, False, "self-approval: this person is in the request's delegation chain"),
        (BOB, True, "approved"),
    ]


async def _request_id(gov: Harness, agent: AgentKey) -> str:
    """The id `execute` gave B's request: the one workflow of B's listed waiting."""
    async with asyncio.timeout(30):
        while True:
            for pending in await gov.operator.pending_approvals(agent=agent.agent_id):
                return pending.card.request_id
            await asyncio.sleep(0.1)


async def _approvals_show(
    gov: Harness,
    workflow_id: str,
    database_dsn: str,
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> str:
    env = {
        "PROCTOR_DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_POLICY_DIR": str(POLICY_DIR),
    }
    done = await arun(["approvals", "show", workflow_id], env, tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_without_the_chain_the_same_refund_is_denied(gov: Harness) -> None:
    """The control: the escalation above is policy reading the chain, not the action alone."""
    b = await gov.new_agent(role="delegated")
    outcome = await gov.proctor.execute(b, "refund_big", {}, handler=lambda p: None)
    assert outcome.decision.rule_id == "refunds-only-through-alice"


def widened(gov: Harness, a: AgentKey, b: AgentKey) -> tuple[DelegationLink, ...]:
    root = extend_chain(
        gov.approver(ALICE), to=a.agent_id, actions=["refund_small"], expires_in=HOUR
    )
    now = datetime.now(UTC)
    wide = sign_link(a, to=b.agent_id, actions=["refund_*"], expires_at=now + HOUR / 2)
    return (*root, wide)


def expired(gov: Harness, a: AgentKey, b: AgentKey) -> tuple[DelegationLink, ...]:
    now = datetime.now(UTC)
    root = extend_chain(gov.approver(ALICE), to=a.agent_id, actions=["refund_*"], expires_in=HOUR)
    old = sign_link(
        a, to=b.agent_id, actions=["refund_big"], issued_at=now - 2 * HOUR, expires_at=now - HOUR
    )
    return (*root, old)


def wrong_key(gov: Harness, a: AgentKey, b: AgentKey) -> tuple[DelegationLink, ...]:
    root = extend_chain(gov.approver(ALICE), to=a.agent_id, actions=["refund_*"], expires_in=HOUR)
    impostor = AgentKey.generate(a.agent_id)  # A's name, not A's registered key
    return impostor.delegate(b.agent_id, ["refund_big"], expires_in=HOUR, parent=root)


CHAINS: dict[str, tuple[Callable[[Harness, AgentKey, AgentKey], Any], str]] = {
    "widened": (widened, "'refund_*' is wider than the link it extends allows"),
    "expired": (expired, "expired at"),
    "wrong key": (wrong_key, "not signed by a key of agent:"),
}


@pytest.mark.parametrize("kind", list(CHAINS))
async def test_a_chain_that_does_not_hold_refuses_and_costs_only_the_requester(
    gov: Harness, kind: str
) -> None:
    a, b = await gov.new_agent(role="delegated"), await gov.new_agent(role="delegated")
    make, why = CHAINS[kind]
    await _refused(gov, a, b, make(gov, a, b), why)


async def test_a_chain_deeper_than_the_maximum_refuses(gov: Harness) -> None:
    """The harness's worker keeps the default maximum of 3 links: alice → A → C → D → B is 4."""
    a, b = await gov.new_agent(role="delegated"), await gov.new_agent(role="delegated")
    c, d = await gov.new_agent(role="delegated"), await gov.new_agent(role="delegated")
    chain = extend_chain(gov.approver(ALICE), to=a.agent_id, actions=["refund_*"], expires_in=HOUR)
    for giver, taker in ((a, c), (c, d), (d, b)):
        chain = giver.delegate(taker.agent_id, ["refund_big"], expires_in=HOUR, parent=chain)
    await _refused(gov, a, b, chain, "more than the maximum of 3")


async def _refused(
    gov: Harness, a: AgentKey, b: AgentKey, chain: tuple[DelegationLink, ...], why: str
) -> Outcome:
    before_a, before_b = await trust(gov, a), await trust(gov, b)
    ran: list[object] = []
    outcome = await gov.proctor.execute(
        b, "refund_big", {}, handler=ran.append, on_behalf_of=ALICE, delegation=chain
    )
    assert outcome.decision.rule_id == "identity:bad_delegation"
    assert why in outcome.decision.reason, outcome.decision.reason
    assert ran == []
    assert await trust(gov, b) == before_b - 10, "the requester signed the chain in: its doing"
    assert await trust(gov, a) == before_a, "a delegator is never charged"
    return outcome
