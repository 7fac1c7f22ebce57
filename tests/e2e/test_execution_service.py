"""An execution service (a web API the agent calls) takes the permission and reports for the
agent's request, with its own key, because the agent signed the service's name into the request.

Written from the attacker's side: the agent itself, another registered agent, an unregistered
or suspended service can neither execute nor report; real worker, Temporal and Postgres.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter

from proctor import ActionStatus, AgentKey
from proctor.approvals.keys import VoteSigner
from proctor.client import _signed
from proctor.contract import DECIDE_SIGNAL, REPORT_RESULT_UPDATE
from proctor.models import (
    ActionRequest,
    AgentStatus,
    ExecutionMode,
    ExecutionSpec,
    HandlerReport,
    Outcome,
    Permission,
)
from proctor.stores.agents import AgentStore
from tests.helpers.harness import Harness

ALICE = "alice@example.com"


def service_spec(executor: str) -> ExecutionSpec:
    return ExecutionSpec(mode=ExecutionMode.HANDLER, executor=executor, timeout_seconds=30)


def request_for(key: AgentKey, action: str, executor: str) -> ActionRequest:
    return key.new_request(
        action, {"order": 7}, service_spec(executor), request_id=f"svc-{uuid.uuid4().hex[:12]}"
    )


async def granted_claim_token(handle: WorkflowHandle[Any, Any]) -> str:
    """What anyone who can read the workflow's history learns: the granted claim token."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_completed_event_attributes"):
            outcome = event.workflow_execution_update_completed_event_attributes.outcome
            if outcome.HasField("success"):
                [permission] = await pydantic_data_converter.decode(
                    outcome.success.payloads, [Permission]
                )
                if isinstance(permission, Permission) and permission.granted:
                    return str(permission.claim_token)
    raise AssertionError("no granted permission in history")


async def events(gov: Harness, workflow_id: str) -> list[str]:
    return [row.event_type for row in await gov.audit.for_workflow(workflow_id)]


async def test_the_named_service_executes_and_reports_with_its_own_key(gov: Harness) -> None:
    agent, service = await gov.new_agent(), await gov.new_agent(role="service")
    calls: list[dict[str, Any]] = []
    request = request_for(agent, "read:orders", service.agent_id)

    def serve(params: dict[str, Any]) -> str:
        calls.append(params)
        return "served"

    outcome = await gov.proctor.submit(request, handler=serve, key=service)

    assert outcome.status is ActionStatus.COMPLETED and outcome.result == "served"
    assert calls == [{"order": 7}]
    assert await events(gov, request.workflow_id) == ["decided", "trust_changed", "outcome"]
    [row] = await gov.audit.for_workflow(request.workflow_id, event_types=("decided",))
    assert row.agent_id == agent.agent_id  # the agent asked; the service only executed


async def test_neither_the_agent_nor_another_agent_can_execute_for_the_service(
    gov: Harness,
) -> None:
    """The agent's own key and another registered agent's key are refused the permission of
    a request naming a service; nor can the agent report a result with the claim token it
    reads from history. Only the service executes, once."""
    agent, service = await gov.new_agent(), await gov.new_agent(role="service")
    other = await gov.new_agent()
    request = request_for(agent, "refund_requests", service.agent_id)
    ran_by: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    def attempt(who: str) -> Any:
        return lambda params: ran_by.append(who)

    async def genuine(params: dict[str, Any]) -> str:
        ran_by.append("service")
        started.set()
        await release.wait()
        return "refunded"

    by_agent = asyncio.create_task(gov.proctor.submit(request, handler=attempt("agent"), key=agent))
    by_other = asyncio.create_task(gov.proctor.submit(request, handler=attempt("other"), key=other))
    await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
    await gov.vote(request.workflow_id, "alice@example.com", approve=True)
    await gov.wait_for_stage(request.workflow_id, "awaiting_execution")
    by_service = asyncio.create_task(gov.proctor.submit(request, handler=genuine, key=service))
    await asyncio.wait_for(started.wait(), 20)

    handle = gov.proctor.temporal.get_workflow_handle(request.workflow_id)
    token = await granted_claim_token(handle)
    forged = _signed(agent, HandlerReport(claim_token=token, succeeded=True, result="forged"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(REPORT_RESULT_UPDATE, forged, result_type=Outcome)
    assert "not signed by the execution service's key" in str(refused.value.cause)
    release.set()

    outcomes = await asyncio.wait_for(asyncio.gather(by_agent, by_other, by_service), 30)
    assert {o.status for o in outcomes} == {ActionStatus.COMPLETED}
    assert {o.result for o in outcomes} == {"refunded"}
    assert ran_by == ["service"]


@pytest.mark.parametrize("standing", ["unregistered", "suspended"])
async def test_a_service_that_is_not_registered_and_active_executes_nothing(
    gov: Harness, standing: str
) -> None:
    agent = await gov.new_agent()
    service = AgentKey.generate(f"service-{uuid.uuid4().hex[:10]}")
    refusal = "identity:unknown_executor"
    if standing == "suspended":
        service = await gov.new_agent(role="service")
        await AgentStore(gov.pool).set_status(service.agent_id, AgentStatus.SUSPENDED)
        refusal = "identity:inactive_executor"
    calls: list[dict[str, Any]] = []
    request = request_for(agent, "read:orders", service.agent_id)

    outcome = await gov.proctor.submit(request, handler=calls.append, key=service)

    assert outcome.status is ActionStatus.DENIED
    assert outcome.decision.rule_id == refusal
    assert calls == []
    [row] = await gov.audit.for_workflow(request.workflow_id, event_types=("identity_refused",))
    assert service.agent_id in row.payload and '"charged":true' in row.payload.replace(" ", "")


async def test_the_execution_services_key_never_votes(gov: Harness) -> None:
    """Even planted as an approver's vote key, the key of the service named to execute the
    request is refused as a voter, like the agent's own."""
    agent, service = await gov.new_agent(), await gov.new_agent(role="service")
    request = request_for(agent, "refund_requests", service.agent_id)
    ran: list[dict[str, Any]] = []
    by_service = asyncio.create_task(gov.proctor.submit(request, handler=ran.append, key=service))
    await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
    pending = (await gov.proctor.progress(request.workflow_id)).pending
    assert pending is not None and isinstance(service.private_key, Ed25519PrivateKey)

    gov.vote_keys.register_approver(ALICE, service.public_key_pem)
    service_as_alice = VoteSigner(service.private_key, approver=ALICE)
    vote = service_as_alice.sign(
        workflow_id=request.workflow_id, request_digest=pending.card.request_digest, approve=True
    )
    await gov.proctor.temporal.get_workflow_handle(request.workflow_id).signal(DECIDE_SIGNAL, vote)
    state = await gov.wait_until(request.workflow_id, lambda p: len(p.votes) == 1)

    assert not state.votes[0].accepted and "never vote" in (state.votes[0].reason or "")
    assert ran == [] and not by_service.done()
    await gov.vote(request.workflow_id, ALICE, approve=True)
    assert (await asyncio.wait_for(by_service, 30)).status is ActionStatus.COMPLETED
