"""A request made on someone's behalf, escalated: the approval card carries the verified
delegation chain, nobody in it may approve, and the `decided` row names the chain (only then:
rows of requests without one keep their exact payload). Real worker, Temporal and Postgres."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from proctor.delegation import sign_link
from proctor.models import ActionStatus, ExecutionMode, ExecutionSpec
from tests.helpers.harness import Harness

ALICE, BOB = "alice@example.com", "bob@example.com"
HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


async def decided_payload(gov: Harness, workflow_id: str) -> dict[str, Any]:
    rows = await gov.audit.for_workflow(workflow_id)
    payload: dict[str, Any] = json.loads(next(r for r in rows if r.event_type == "decided").payload)
    return payload


async def test_a_delegated_request_shows_its_chain_and_its_root_cannot_approve(
    gov: Harness,
) -> None:
    key = await gov.new_agent()
    link = sign_link(
        gov.approver(ALICE),
        to=key.agent_id,
        actions=["refund_requests"],
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    request = key.new_request(
        "refund_requests", {"amount": 40}, HANDLER, on_behalf_of=ALICE, delegation=[link]
    )
    ran: list[Any] = []
    task = asyncio.create_task(gov.proctor.submit(request, handler=ran.append, key=key))
    pending = await gov.wait_until_listed(request.workflow_id)
    chain = (ALICE, f"agent:{key.agent_id}")
    assert pending.card.delegation_chain == chain
    assert pending.card.grant_max_seconds is None  # the tester rule allows no grants

    await gov.vote(request.workflow_id, ALICE, approve=True)
    await gov.vote(request.workflow_id, BOB, approve=True)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and ran == [{"amount": 40}]
    assert [(v.vote.approver, v.accepted, v.reason) for v in outcome.approvals] == [
        (ALICE, False, "self-approval: this person is in the request's delegation chain"),
        (BOB, True, "approved"),
    ]
    assert (await decided_payload(gov, request.workflow_id))["delegation"] == list(chain)


async def test_a_request_without_delegation_keeps_its_decided_row_as_before(gov: Harness) -> None:
    key = await gov.new_agent()
    outcome = await gov.proctor.execute(key, "read:orders", {"n": 1}, handler=lambda p: "ok")
    assert outcome.status is ActionStatus.COMPLETED
    assert set(await decided_payload(gov, outcome.workflow_id)) == {
        "request_digest",
        "requested_at",
        "params",
        "execution",
        "trust_score",
        "decision",
    }
