"""The agent is the adversary: every attack an agent process can mount with what it has (its
own key, its own Temporal client, what history shows it), tried against the real worker.

Each test is written from the attacker's side and states the guarantee it proves; the README's
"Threat model" points here.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey, Client
from proctor.approvals.keys import VoteSigner
from proctor.client import agent_task_queue
from proctor.contract import (
    CANCEL_SIGNAL,
    DECIDE_SIGNAL,
    GOVERNED_ACTION_WORKFLOW,
    REPORT_RESULT_UPDATE,
    REQUEST_PERMISSION_UPDATE,
)
from proctor.models import (
    CancelRequest,
    ExecutionMode,
    ExecutionSpec,
    GovernedActionInput,
    HandlerReport,
    Outcome,
    Permission,
    PermissionRequest,
    Vote,
)
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from tests.helpers.harness import Harness

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


async def attacker_client(dev_server: WorkflowEnvironment) -> TemporalClient:
    """The agent's own connection to Temporal: all it needs to send signals and updates."""
    return await TemporalClient.connect(
        dev_server.client.service_client.config.target_host, data_converter=pydantic_data_converter
    )


async def escalated(
    gov: Harness, key: AgentKey, calls: list[Any]
) -> tuple[asyncio.Task[Outcome], str]:
    request_id = f"refund-{uuid.uuid4().hex[:10]}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {"amount": 9999}, handler=calls.append, request_id=request_id
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    return task, workflow_id


def reading_agent(gov: Harness, calls: list[dict[str, Any]]) -> Client:
    """An agent process with one durable tool, `read:orders`, that records its calls."""
    agent = Client(gov.proctor.temporal, task_queue=gov.task_queue)

    @agent.tool("read:orders")
    async def read(params: dict[str, Any]) -> str:
        calls.append(params)
        return "read"

    return agent


async def events(gov: Harness, workflow_id: str) -> list[str]:
    return [r.event_type for r in await AuditLog(gov.pool).for_workflow(workflow_id)]


async def test_an_agent_cannot_approve_its_own_request(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """Self-approval: a vote signalled from the agent's process in an approver's name is
    refused and audited, however it is dressed up: unsigned, signed by a key nobody registered,
    signed by the agent's own key (even if that key were registered as the approver's), or
    replayed from another request."""
    key = await gov.new_agent()
    calls: list[Any] = []
    task, workflow_id = await escalated(gov, key, calls)
    pending = (await gov.proctor.progress(workflow_id)).pending
    assert pending is not None
    digest = pending.card.request_digest
    attacker = await attacker_client(dev_server)
    handle = attacker.get_workflow_handle(workflow_id)

    unsigned = Vote(
        approver="alice@example.com",
        approve=True,
        channel="slack",
        workflow_id=workflow_id,
        request_digest=digest,
    )
    await handle.signal(DECIDE_SIGNAL, unsigned)
    stranger = VoteSigner.generate(approver="alice@example.com")
    await handle.signal(
        DECIDE_SIGNAL, stranger.sign(workflow_id=workflow_id, request_digest=digest, approve=True)
    )
    # The agent's key, planted as one of alice's vote keys: still never a vote.
    from cryptography.hazmat.primitives.asymmetric import ed25519

    assert isinstance(key.private_key, ed25519.Ed25519PrivateKey)
    gov.vote_keys.register_approver("alice@example.com", key.public_key_pem)
    agent_as_alice = VoteSigner(key.private_key, approver="alice@example.com")
    await handle.signal(
        DECIDE_SIGNAL,
        agent_as_alice.sign(workflow_id=workflow_id, request_digest=digest, approve=True),
    )
    # alice's genuine vote on another request, replayed here
    other_task, other_id = await escalated(gov, key, [])
    genuine = await gov.vote(other_id, "alice@example.com", approve=False, note="no")
    await handle.signal(DECIDE_SIGNAL, genuine)

    state = await gov.wait_until(workflow_id, lambda p: len(p.votes) == 4)
    reasons = [v.reason for v in state.votes]
    assert [v.accepted for v in state.votes] == [False] * 4
    assert "unsigned vote" in reasons[0]
    assert "neither a registered key" in reasons[1]
    assert "agents never vote" in reasons[2]
    assert "different workflow" in reasons[3]
    assert calls == [] and not task.done()
    assert (await events(gov, workflow_id)).count("vote") == 4

    await gov.vote(workflow_id, "alice@example.com", approve=True)
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert [v.vote.approver for v in outcome.approvals if v.accepted] == ["alice@example.com"]
    assert (await asyncio.wait_for(other_task, 30)).status is ActionStatus.REJECTED


async def test_an_approval_service_key_vouches_for_the_human_it_authenticated(gov: Harness) -> None:
    """The Slack app signs with its channel key for whoever it authenticated; a vote claiming
    that channel but signed by another channel's key is refused."""
    key = await gov.new_agent()
    calls: list[Any] = []
    task, workflow_id = await escalated(gov, key, calls)
    impostor = VoteSigner.generate(channel="slack")  # not the registered slack key
    await gov.operator.decide(workflow_id, impostor, approve=True, approver="alice@example.com")
    state = await gov.wait_until(workflow_id, lambda p: len(p.votes) == 1)
    assert not state.votes[0].accepted
    await gov.operator.decide(
        workflow_id, gov.channel("slack"), approve=True, approver="alice@example.com"
    )
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.approvals[-1].vote.channel == "slack"


async def test_a_signed_request_runs_once_whatever_workflow_it_is_started_in(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """Replay: a tool-mode request copied from history, started under another workflow id, or
    again under its own id after the first run closed, runs nothing; each attempt is audited
    and costs the agent nothing (it did not do it)."""
    key = await gov.new_agent()
    calls: list[dict[str, Any]] = []
    agent = reading_agent(gov, calls)
    request = key.new_request(
        "read:orders",
        {"n": 1},
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id)),
    )
    attacker = await attacker_client(dev_server)
    async with agent.agent_worker(key.agent_id):
        first = await agent.submit(request)
        assert first.status is ActionStatus.COMPLETED and len(calls) == 1
        elsewhere = await attacker.execute_workflow(
            GOVERNED_ACTION_WORKFLOW,
            GovernedActionInput(request=request),
            id=f"action-{uuid.uuid4().hex}",
            task_queue=gov.task_queue,
            result_type=Outcome,
        )
        again = await attacker.execute_workflow(
            GOVERNED_ACTION_WORKFLOW,
            GovernedActionInput(request=request),
            id=request.workflow_id,
            task_queue=gov.task_queue,
            result_type=Outcome,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    assert elsewhere.decision.rule_id == "identity:wrong_workflow_id"
    assert again.decision.rule_id == "identity:replayed_request"
    assert len(calls) == 1
    # The second run of the same id has its own audit rows; the first run's stay as they were.
    rows = await AuditLog(gov.pool).for_workflow(request.workflow_id)
    assert [r.event_type for r in rows] == [
        "decided",
        "trust_changed",
        "outcome",
        "identity_refused",
        "outcome",
    ]
    agent_record = await AgentStore(gov.pool).get(key.agent_id)
    assert agent_record is not None and agent_record.info.trust_score == 100  # +1 capped


async def test_nobody_can_drain_another_agents_trust(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """Trust griefing: ten requests naming a victim, unsigned or signed with the wrong key,
    leave its trust and status alone; its next genuine request is allowed."""
    victim = await gov.new_agent()
    mallory = AgentKey.generate(victim.agent_id)  # claims to be the victim
    attacker = Client(await attacker_client(dev_server), task_queue=gov.task_queue)
    for i in range(10):
        forged = mallory.new_request("read:orders", {"i": i}, HANDLER)
        if i % 2:
            forged = forged.model_copy(update={"signature": ""})
        outcome = await attacker.submit(forged, handler=lambda p: None, key=mallory)
        assert outcome.status is ActionStatus.DENIED
    record = await AgentStore(gov.pool).get(victim.agent_id)
    assert record is not None
    assert (record.info.trust_score, record.info.status.value) == (100, "active")
    assert (await gov.proctor.execute(victim, "read:orders", {}, handler=lambda p: 1)).ok


async def test_copies_of_a_suspended_agents_request_cost_it_nothing(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """A genuine request, once run, copied back after its agent was suspended: refused as a
    copy (what is wrong with the agent now is not the copier's proof against it)."""
    from proctor.models import AgentStatus

    key = await gov.new_agent()
    calls: list[dict[str, Any]] = []
    agent = reading_agent(gov, calls)
    request = key.new_request(
        "read:orders",
        {"n": 1},
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id)),
    )
    attacker = await attacker_client(dev_server)
    async with agent.agent_worker(key.agent_id):
        assert (await agent.submit(request)).status is ActionStatus.COMPLETED
        await AgentStore(gov.pool).set_status(key.agent_id, AgentStatus.SUSPENDED)
        for _ in range(3):
            again = await attacker.execute_workflow(
                GOVERNED_ACTION_WORKFLOW,
                GovernedActionInput(request=request),
                id=request.workflow_id,
                task_queue=gov.task_queue,
                result_type=Outcome,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            assert again.decision.rule_id == "identity:replayed_request"
    record = await AgentStore(gov.pool).get(key.agent_id)
    assert record is not None and record.info.trust_score == 100 and len(calls) == 1


async def test_only_the_agent_can_take_or_report_its_permission(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """Another process cannot take an approved action's permission (unsigned ask), nor report
    a result for it with the claim token it reads from history (unsigned report)."""
    key = await gov.new_agent()
    release, running = asyncio.Event(), asyncio.Event()

    async def slow(params: dict[str, Any]) -> str:
        running.set()
        await release.wait()
        return "genuine"

    request_id = f"refund-{uuid.uuid4().hex[:10]}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {"amount": 9999}, handler=slow, request_id=request_id
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    handle = (await attacker_client(dev_server)).get_workflow_handle(workflow_id)
    stolen = asyncio.create_task(
        handle.execute_update(
            REQUEST_PERMISSION_UPDATE,
            PermissionRequest(client_id="mallory", workflow_id=workflow_id),
            result_type=Permission,
        )
    )
    genuine_ask = await first_ask(handle)  # signed by the agent, readable in history
    copied = asyncio.create_task(
        handle.execute_update(REQUEST_PERMISSION_UPDATE, genuine_ask, result_type=Permission)
    )
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    assert not (await asyncio.wait_for(stolen, 30)).granted
    assert not (await asyncio.wait_for(copied, 30)).granted
    await asyncio.wait_for(running.wait(), 20)  # the agent's own process got it

    token = await granted_claim_token(handle)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            REPORT_RESULT_UPDATE,
            HandlerReport(
                claim_token=token,
                succeeded=True,
                result="forged",
                signature=base64.b64encode(b"x" * 64).decode(),
            ),
            result_type=Outcome,
        )
    release.set()
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED and outcome.result == "genuine"


async def first_ask(handle: Any) -> PermissionRequest:
    """The agent's own signed ask for permission, as history shows it to anyone."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            [ask] = await pydantic_data_converter.decode(
                request.input.args.payloads, [PermissionRequest]
            )
            assert isinstance(ask, PermissionRequest)
            return ask
    raise AssertionError("no permission ask in history")


async def granted_claim_token(handle: Any) -> str:
    """What anyone who can read the workflow's history learns: the granted claim token."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_completed_event_attributes"):
            outcome = event.workflow_execution_update_completed_event_attributes.outcome
            if outcome.HasField("success"):
                [permission] = await pydantic_data_converter.decode(
                    outcome.success.payloads, [Permission]
                )
                if permission.granted:
                    return str(permission.claim_token)
    raise AssertionError("no granted permission in history")


async def test_the_permission_goes_to_the_process_that_resubmits_after_a_crash(
    gov: Harness,
) -> None:
    """Handler mode: the first process dies while its action waits for approval; a new one
    resubmits the same request id and is told where it stands; after the approval the new
    process runs the handler, the dead one never does."""
    key = await gov.new_agent()
    dead_calls: list[Any] = []
    request_id = f"crash-{uuid.uuid4().hex[:10]}"
    first = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"amount": 9999},
            handler=dead_calls.append,
            request_id=request_id,
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    first.cancel()  # the process is gone; its ask is still pending in the workflow

    seen: list[str] = []
    live_calls: list[Any] = []
    second = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"amount": 9999},
            handler=live_calls.append,
            request_id=request_id,
            on_status=seen.append,
        )
    )
    await asyncio.sleep(0.5)
    assert seen == ["awaiting_approval"]
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    outcome = await asyncio.wait_for(second, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert len(live_calls) == 1 and dead_calls == []


async def test_a_permission_held_by_a_dead_process_ends_unknown_not_hung(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """The process that took the permission dies before reporting: after the execution
    timeout the action ends `unknown` (it may or may not have run), audited; a resubmission
    meanwhile is told at once that another process holds it."""
    key = await gov.new_agent()
    started = asyncio.Event()

    async def hangs(params: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(3600)

    request_id = f"hang-{uuid.uuid4().hex[:10]}"
    holder = asyncio.create_task(
        gov.proctor.execute(
            key,
            "read:orders",
            {},
            handler=hangs,
            request_id=request_id,
            execution_timeout=timedelta(seconds=3),
        )
    )
    await asyncio.wait_for(started.wait(), 20)
    holder.cancel()  # dies holding the permission
    answered: list[Any] = []
    late = await asyncio.wait_for(
        gov.proctor.execute(key, "read:orders", {}, handler=answered.append, request_id=request_id),
        30,
    )
    assert answered == []
    assert late.status is ActionStatus.UNKNOWN
    assert "may or may not have run" in (late.error or "")
    rows = await AuditLog(gov.pool).for_workflow(late.workflow_id)
    assert '"status":"unknown"' in rows[-1].payload


async def test_cancel_stops_a_waiting_action_and_is_refused_once_it_runs(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """`proctor cancel` (the cancel signal) ends a waiting action as an audited `cancelled`
    outcome; once a process holds the permission, a cancel is refused and audited."""
    key = await gov.new_agent()
    calls: list[Any] = []
    task, workflow_id = await escalated(gov, key, calls)
    handle = gov.proctor.temporal.get_workflow_handle(workflow_id)
    await handle.signal(CANCEL_SIGNAL, CancelRequest(by="ops@example.com", reason="duplicate"))
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.CANCELLED and calls == []
    rows = await AuditLog(gov.pool).for_workflow(workflow_id)
    assert rows[-1].actor == "ops@example.com" and "duplicate" in rows[-1].payload

    release = asyncio.Event()
    running = asyncio.Event()

    async def slow(params: dict[str, Any]) -> str:
        running.set()
        await release.wait()
        return "ran"

    request_id = f"slow-{uuid.uuid4().hex[:10]}"
    busy = asyncio.create_task(
        gov.proctor.execute(key, "read:orders", {}, handler=slow, request_id=request_id)
    )
    await asyncio.wait_for(running.wait(), 20)
    await gov.proctor.temporal.get_workflow_handle(f"action-{request_id}").signal(
        CANCEL_SIGNAL, CancelRequest(by="ops@example.com", reason="too late")
    )
    release.set()
    done = await asyncio.wait_for(busy, 30)
    assert done.status is ActionStatus.COMPLETED
    assert "cancel_refused" in await events(gov, done.workflow_id)


async def test_a_cancel_before_a_durable_tool_starts_means_it_never_runs(gov: Harness) -> None:
    """A cancel delivered with the start (signal-with-start) reaches an allowed tool-mode
    action before its tool is scheduled: the tool never runs, the outcome is `cancelled`."""
    key = await gov.new_agent()
    calls: list[dict[str, Any]] = []
    agent = reading_agent(gov, calls)
    request = key.new_request(
        "read:orders",
        {"n": 1},
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id)),
    )
    async with agent.agent_worker(key.agent_id):
        handle = await gov.proctor.temporal.start_workflow(
            GOVERNED_ACTION_WORKFLOW,
            GovernedActionInput(request=request),
            id=request.workflow_id,
            task_queue=gov.task_queue,
            result_type=Outcome,
            start_signal=CANCEL_SIGNAL,
            start_signal_args=[CancelRequest(by="ops@example.com", reason="stop it")],
        )
        outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome.status is ActionStatus.CANCELLED and calls == []
    assert await events(gov, request.workflow_id) == ["decided", "outcome"]
