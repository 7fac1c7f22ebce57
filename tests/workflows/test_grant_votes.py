"""Approve and remember, in the workflow: a round approved by votes that ask for a standing
grant makes the grant they agree on (stored with its `grant_made` row), or audits
`grant_refused` with why; the approval stands either way. Real worker, Temporal, Postgres
(policy: tests/e2e/policies/grants.yaml, agents of role `grantee`)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from proctor.models import ActionStatus, GrantScope, Outcome, PendingApproval
from proctor.stores.grants import GrantStore
from tests.helpers.harness import Harness

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
REFUNDS, WIRES = "grantable-refunds", "grantable-wires"


async def waiting(
    gov: Harness, action: str, params: dict[str, Any], role: str = "grantee"
) -> tuple[asyncio.Task[Outcome], PendingApproval, list[Any]]:
    """A handler-mode request escalated and listed: its task, its card, what it ran."""
    key = await gov.new_agent(role=role)
    ran: list[Any] = []
    request_id = f"grant-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(key, action, params, handler=ran.append, request_id=request_id)
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    progress = await gov.proctor.progress(workflow_id)
    assert progress.pending is not None
    return task, progress.pending, ran


async def approve(
    gov: Harness, pending: PendingApproval, who: str, grant: GrantScope | None = None
) -> None:
    await gov.operator.decide(
        pending.card.workflow_id,
        gov.approver(who),
        approve=True,
        approver=who,
        request_digest=pending.card.request_digest,
        grant=grant,
    )


async def rows(gov: Harness, workflow_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (r.seq, r.event_type, json.loads(r.payload))
        for r in await gov.audit.for_workflow(workflow_id)
    ]


def store(gov: Harness) -> GrantStore:
    return GrantStore(gov.pool, gov.audit)


async def test_an_approval_with_a_grant_makes_it_before_the_action_runs(gov: Harness) -> None:
    task, pending, ran = await waiting(gov, "refund_requests", {"amount": 500})
    assert (pending.card.rule_id, pending.card.grant_max_seconds) == (REFUNDS, 8 * 3600)
    scope = GrantScope(
        rule_id=REFUNDS, duration_seconds=3600, when="params.amount <= 600", max_uses=3
    )
    await approve(gov, pending, ALICE, scope)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and ran == [{"amount": 500}]
    trail = await rows(gov, outcome.workflow_id)
    assert [event for _, event, _ in trail] == [
        "decided",
        "escalated",
        "vote",
        "grant_made",
        "trust_changed",
        "outcome",
    ]
    seq, _, made = next(row for row in trail if row[1] == "grant_made")
    assert seq in outcome.audit_seqs
    grant = await store(gov).get(made["grant_id"])
    assert grant is not None
    vote = outcome.approvals[0].vote
    assert vote.signed_at is not None
    assert (grant.agent_id, grant.action, grant.rule_id) == (
        pending.card.agent_id,
        "refund_requests",
        REFUNDS,
    )
    assert (grant.when, grant.max_uses, grant.uses, grant.made_by) == (
        "params.amount <= 600",
        3,
        0,
        (ALICE,),
    )
    assert grant.expires_at == vote.signed_at + timedelta(hours=1)
    assert grant.votes == (vote,) and grant.request.request_id == pending.card.request_id
    assert grant.workflow_id == outcome.workflow_id


async def test_a_grant_under_a_rule_that_allows_none_is_refused_and_the_approval_stands(
    gov: Harness,
) -> None:
    """The tester policy's refund rule has no `grant:`; a vote asking for one still approves."""
    task, pending, ran = await waiting(gov, "refund_requests", {"amount": 5}, role="tester")
    assert pending.card.grant_max_seconds is None
    scope = GrantScope(rule_id=pending.card.rule_id, duration_seconds=3600)
    await approve(gov, pending, ALICE, scope)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and ran == [{"amount": 5}]
    assert outcome.approvals[0].accepted
    trail = await rows(gov, outcome.workflow_id)
    refused = [payload for _, event, payload in trail if event == "grant_refused"]
    assert refused == [{"reason": "the rule allows no standing grants (`grant: {max: ...}`)"}]
    assert "grant_made" not in [event for _, event, _ in trail]
    assert await store(gov).list(agent_id=pending.card.agent_id, include_ended=True) == []


async def test_a_quorum_makes_a_grant_only_if_every_approval_asks(gov: Harness) -> None:
    task, pending, ran = await waiting(gov, "wire_transfer", {"amount": 9000})
    assert pending.card.quorum == 2
    await approve(gov, pending, ALICE, GrantScope(rule_id=WIRES, duration_seconds=1800))
    await approve(gov, pending, BOB)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and ran == [{"amount": 9000}]
    refused = [p for _, e, p in await rows(gov, outcome.workflow_id) if e == "grant_refused"]
    assert refused == [{"reason": f"not every approval asked for a grant ({BOB} did not)"}]
    assert await store(gov).list(agent_id=pending.card.agent_id, include_ended=True) == []


async def test_a_quorum_that_all_asks_grants_the_narrowest_of_their_scopes(gov: Harness) -> None:
    """The rule caps grants at 30 min: an hour asked is cut to it; both conditions hold."""
    task, pending, _ = await waiting(gov, "wire_transfer", {"amount": 9000})
    await approve(
        gov,
        pending,
        CAROL,
        GrantScope(rule_id=WIRES, duration_seconds=3600, when="params.amount < 10000"),
    )
    await approve(
        gov,
        pending,
        ALICE,
        GrantScope(rule_id=WIRES, duration_seconds=7200, when="params.amount > 100", max_uses=2),
    )
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED
    made = [p for _, e, p in await rows(gov, outcome.workflow_id) if e == "grant_made"]
    assert len(made) == 1
    grant = await store(gov).get(made[0]["grant_id"])
    assert grant is not None
    first = min(v.vote.signed_at for v in outcome.approvals if v.vote.signed_at is not None)
    assert grant.expires_at == first + timedelta(minutes=30)
    assert grant.when == "(params.amount < 10000) && (params.amount > 100)"
    assert (grant.max_uses, grant.made_by) == (2, (CAROL, ALICE))


async def test_a_grant_whose_condition_does_not_compile_is_refused_by_the_store(
    gov: Harness,
) -> None:
    """Signed straight with a vote key (the CLI would have refused it): the activity refuses
    it as InvalidGrant, the workflow audits why, and the approved action runs."""
    task, pending, ran = await waiting(gov, "refund_requests", {"amount": 50})
    bad = GrantScope(rule_id=REFUNDS, duration_seconds=600, when="params.amount <=")
    await approve(gov, pending, ALICE, bad)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and ran == [{"amount": 50}]
    refused = [p for _, e, p in await rows(gov, outcome.workflow_id) if e == "grant_refused"]
    assert len(refused) == 1
    assert "is not a valid condition" in refused[0]["reason"]
    assert await store(gov).list(agent_id=pending.card.agent_id, include_ended=True) == []


async def test_a_deny_ends_the_round_and_no_grant_is_asked_of_the_store(gov: Harness) -> None:
    """A grant-asking approval that did not reach the quorum before a veto makes nothing."""
    task, pending, ran = await waiting(gov, "wire_transfer", {"amount": 1})
    await approve(gov, pending, ALICE, GrantScope(rule_id=WIRES, duration_seconds=600))
    await gov.vote(pending.card.workflow_id, BOB, approve=False, note="no")
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.REJECTED and ran == []
    events = [e for _, e, _ in await rows(gov, outcome.workflow_id)]
    assert "grant_made" not in events and "grant_refused" not in events
