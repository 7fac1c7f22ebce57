"""One governed action end to end: real Temporal dev server, real worker, real Postgres."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey, Client
from proctor.client import _signed
from proctor.contract import REQUEST_PERMISSION_UPDATE
from proctor.models import ExecutionMode, ExecutionSpec, Permission, PermissionRequest
from proctor.stores.agents import AgentStore
from tests.helpers.harness import OWNER, Harness, harness, running_worker

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


class Recorder:
    """A handler that remembers every call, so a test can prove it ran once or never."""

    def __init__(self, result: Any = "done", error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.result = result
        self.error = error

    async def __call__(self, params: dict[str, Any]) -> Any:
        self.calls.append(params)
        if self.error is not None:
            raise self.error
        return self.result


async def events(gov: Harness, workflow_id: str) -> list[str]:
    return [row.event_type for row in await gov.audit.for_workflow(workflow_id)]


async def assert_chain_intact(gov: Harness) -> None:
    report = await gov.audit.verify()
    assert report.intact, report.first_break


async def test_allowed_action_runs_handler_once_and_audits(gov: Harness) -> None:
    key = await gov.new_agent("rsa-2048")
    handler = Recorder(result={"rows": 3})

    outcome = await gov.proctor.execute(key, "read:orders", {"customer": 7}, handler=handler)

    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.result == {"rows": 3}
    assert outcome.decision.rule_id == "testers:allow:read:*"
    assert handler.calls == [{"customer": 7}]
    assert await events(gov, outcome.workflow_id) == ["decided", "trust_changed", "outcome"]
    assert len(outcome.audit_seqs) == 2
    agent = await AgentStore(gov.pool).get(key.agent_id)
    assert agent is not None and agent.info.trust_score == 100  # capped at 100
    await assert_chain_intact(gov)


async def test_denied_action_never_runs(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder()

    outcome = await gov.proctor.execute(key, "delete:customer", {"id": 1}, handler=handler)

    assert outcome.status is ActionStatus.DENIED
    assert outcome.decision.rule_id == "no-deletes"
    assert outcome.decision.reason == "Agents never delete customer data"
    assert handler.calls == []
    assert await events(gov, outcome.workflow_id) == ["decided", "outcome"]


async def test_unlisted_action_is_denied_by_default(gov: Harness) -> None:
    key = await gov.new_agent()
    outcome = await gov.proctor.execute(key, "launch_rockets", {}, handler=Recorder())
    assert outcome.status is ActionStatus.DENIED
    assert outcome.decision.rule_id == "default-deny"


async def test_escalated_action_runs_after_approval(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder(result="refunded")
    task = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"orderId": 12345, "amount": 599.99},
            handler=handler,
            request_id="refund-approved-" + key.agent_id,
        )
    )
    workflow_id = "action-refund-approved-" + key.agent_id
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    assert handler.calls == []

    pending = await gov.wait_until_listed(workflow_id)
    assert pending.card.approvers == ("alice@example.com", "bob@example.com")

    await gov.vote(workflow_id, "alice@example.com", approve=True, note="ok")
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.result == "refunded"
    assert handler.calls == [{"orderId": 12345, "amount": 599.99}]
    assert [(v.vote.approver, v.accepted) for v in outcome.approvals] == [
        ("alice@example.com", True)
    ]
    assert await events(gov, workflow_id) == [
        "decided",
        "escalated",
        "vote",
        "trust_changed",
        "outcome",
    ]
    await assert_chain_intact(gov)


async def test_a_sandboxed_worker_governs_the_same_way(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    """PROCTOR_WORKFLOW_SANDBOX=true: the same workflows inside Temporal's sandbox."""
    async with harness(dev_server.client, pool, sandboxed=True) as sandboxed:
        key = await sandboxed.new_agent()
        allowed = await sandboxed.proctor.execute(key, "read:orders", {"n": 1}, handler=Recorder())
        denied = await sandboxed.proctor.execute(
            key, "delete:customer", {"id": 1}, handler=Recorder()
        )
        task = asyncio.create_task(
            sandboxed.proctor.execute(
                key,
                "refund_requests",
                {"orderId": 1, "amount": 5.0},
                handler=Recorder(),
                request_id="sandboxed-" + key.agent_id,
            )
        )
        workflow_id = "action-sandboxed-" + key.agent_id
        await sandboxed.wait_for_stage(workflow_id, "awaiting_approval")
        # A forged ask fails its signature check inside the sandbox: refused, and the worker
        # lives on (cryptography passes through; re-imported, it aborted the process).
        forger = AgentKey.generate("forger")
        forged = _signed(forger, PermissionRequest(client_id="forged", workflow_id=workflow_id))
        refused = await sandboxed.proctor.temporal.get_workflow_handle(workflow_id).execute_update(
            REQUEST_PERMISSION_UPDATE, forged, result_type=Permission
        )
        assert not refused.granted and refused.reason == "the ask is not signed by the agent's key"
        await sandboxed.vote(workflow_id, "alice@example.com", approve=True)
        approved = await asyncio.wait_for(task, 30)

        assert (allowed.status, denied.status, approved.status) == (
            ActionStatus.COMPLETED,
            ActionStatus.DENIED,
            ActionStatus.COMPLETED,
        )
        assert await events(sandboxed, workflow_id) == [
            "decided",
            "escalated",
            "vote",
            "trust_changed",
            "outcome",
        ]
        await assert_chain_intact(sandboxed)


async def test_handler_waits_for_a_worker_that_starts_later(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    """The client starts the workflow and asks for permission in one call; with no worker on
    the queue yet, the ask waits (the server answers once a worker takes the first task).
    The signature is judged at receipt, when the server started the workflow: a worker that
    comes back after longer than the signature window does not refuse what waited for it."""
    queue = f"proctor-late-{uuid.uuid4().hex[:8]}"
    late = Harness(Client(dev_server.client, task_queue=queue), pool, queue)
    key = await late.new_agent()
    handler = Recorder(result="late")
    task = asyncio.create_task(late.proctor.execute(key, "read:orders", {"n": 1}, handler=handler))
    await asyncio.sleep(3)
    assert not task.done() and handler.calls == []

    async with running_worker(dev_server.client, pool, queue, signature_window_seconds=2):
        outcome = await asyncio.wait_for(task, 30)

    assert (outcome.status, outcome.result, handler.calls) == (
        ActionStatus.COMPLETED,
        "late",
        [{"n": 1}],
    )
    assert await events(late, outcome.workflow_id) == ["decided", "trust_changed", "outcome"]


async def test_escalated_action_denied_by_approver(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder()
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {"orderId": 1}, handler=handler, request_id=f"r-{key.agent_id}"
        )
    )
    workflow_id = f"action-r-{key.agent_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")

    await gov.vote(workflow_id, "bob@example.com", approve=False, note="not eligible")
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.REJECTED
    assert handler.calls == []
    agent = await AgentStore(gov.pool).get(key.agent_id)
    assert agent is not None and agent.info.trust_score == 97


async def test_unauthorised_and_self_approvals_are_recorded_and_ignored(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder()
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "expense", {"amount": 20}, handler=handler, request_id=f"e-{key.agent_id}"
        )
    )
    workflow_id = f"action-e-{key.agent_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")

    await gov.vote(workflow_id, "mallory@example.com", approve=True)
    await gov.vote(workflow_id, OWNER.upper(), approve=True)  # listed, owns the agent
    await gov.vote(
        workflow_id, "alice@example.com", approve=True, request_digest="0" * 64
    )  # bound to another request
    state = await gov.wait_until(workflow_id, lambda p: len(p.votes) == 3)
    assert handler.calls == []
    assert [v.accepted for v in state.votes] == [False, False, False]
    assert "not an authorised approver" in state.votes[0].reason
    assert "self-approval" in state.votes[1].reason
    assert "different request" in state.votes[2].reason

    assert state.pending is not None
    await gov.vote(
        workflow_id,
        "alice@example.com",
        approve=True,
        request_digest=state.pending.card.request_digest,
    )
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert len(handler.calls) == 1


async def test_quorum_needs_distinct_approvers(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder()
    task = asyncio.create_task(
        gov.proctor.execute(
            key,
            "wire_transfer",
            {"amount": 10_000},
            handler=handler,
            request_id=f"w-{key.agent_id}",
        )
    )
    workflow_id = f"action-w-{key.agent_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")

    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await gov.vote(workflow_id, " Alice@Example.COM", approve=True)  # same person
    await gov.wait_until(workflow_id, lambda p: len(p.votes) == 2)
    assert not task.done() and handler.calls == []

    await gov.vote(workflow_id, "carol@example.com", approve=True)
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert [v.accepted for v in outcome.approvals] == [True, False, True]


async def test_handler_failure_is_reported_audited_and_costs_trust(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder(error=RuntimeError("payment gateway down"))

    outcome = await gov.proctor.execute(key, "notify:customer", {"id": 3}, handler=handler)

    assert outcome.status is ActionStatus.FAILED
    assert outcome.error == "RuntimeError: payment gateway down"
    rows = await gov.audit.for_workflow(outcome.workflow_id)
    assert '"error":"RuntimeError: payment gateway down"' in rows[-1].payload
    agent = await AgentStore(gov.pool).get(key.agent_id)
    assert agent is not None and agent.info.trust_score == 95


async def test_duplicate_submission_returns_first_outcome_without_rerunning(gov: Harness) -> None:
    key = await gov.new_agent()
    handler = Recorder(result=1)
    request = key.new_request("read:orders", {"page": 1}, HANDLER)

    first, second = await asyncio.gather(
        gov.proctor.submit(request, handler=handler, key=key),
        gov.proctor.submit(request, handler=handler, key=key),
    )
    third = await gov.proctor.submit(request, handler=handler, key=key)

    assert first == second == third
    assert first.status is ActionStatus.COMPLETED
    assert len(handler.calls) == 1
    assert await events(gov, request.workflow_id) == ["decided", "trust_changed", "outcome"]


@pytest.mark.parametrize(
    "tamper, refusal",
    [
        (lambda r: r.model_copy(update={"params": {"orderId": 999}}), "bad_signature"),
        (lambda r: r.model_copy(update={"signature": ""}), "missing_signature"),
        (lambda r: r.model_copy(update={"signature": "bm90IGEgc2lnbmF0dXJl"}), "bad_signature"),
    ],
)
async def test_tampered_requests_are_refused_and_audited(
    gov: Harness, tamper: Any, refusal: str
) -> None:
    """Nothing proves a tampered or unsigned request the agent's: refused, audited, and the
    named agent's trust untouched (else anyone could drain it)."""
    key = await gov.new_agent("rsa-2048")
    handler = Recorder()
    request = tamper(key.new_request("read:orders", {"orderId": 1}, HANDLER))

    outcome = await gov.proctor.submit(request, handler=handler, key=key)

    assert outcome.status is ActionStatus.DENIED
    assert outcome.decision.rule_id == f"identity:{refusal}"
    assert handler.calls == []
    assert await events(gov, request.workflow_id) == ["identity_refused", "outcome"]
    agent = await AgentStore(gov.pool).get(key.agent_id)
    assert agent is not None and agent.info.trust_score == 100


async def test_signature_by_another_agents_key_is_refused(gov: Harness) -> None:
    key, other = await gov.new_agent(), await gov.new_agent()
    forged = other.sign(
        other.new_request("read:orders", {}, HANDLER).model_copy(
            update={"agent_id": other.agent_id}
        )
    )
    forged = forged.model_copy(update={"agent_id": key.agent_id})
    outcome = await gov.proctor.submit(forged, handler=Recorder(), key=key)
    assert outcome.decision.rule_id == "identity:bad_signature"


async def test_unknown_revoked_and_stale_requests_are_refused(gov: Harness) -> None:
    from proctor import AgentKey
    from proctor.models import AgentStatus

    stranger = AgentKey.generate("never-registered")
    outcome = await gov.proctor.execute(stranger, "read:x", {}, handler=Recorder())
    assert outcome.decision.rule_id == "identity:unknown_agent"

    revoked = await gov.new_agent()
    await AgentStore(gov.pool).set_status(revoked.agent_id, AgentStatus.REVOKED)
    outcome = await gov.proctor.execute(revoked, "read:x", {}, handler=Recorder())
    assert outcome.decision.rule_id == "identity:revoked_agent"

    key = await gov.new_agent()
    stale = key.new_request(
        "read:x", {}, HANDLER, requested_at=datetime.now(UTC) - timedelta(minutes=6)
    )
    outcome = await gov.proctor.submit(stale, handler=Recorder(), key=key)
    assert outcome.decision.rule_id == "identity:stale_request"


async def test_replayed_nonce_is_refused(gov: Harness) -> None:
    key = await gov.new_agent()
    original = key.new_request("read:orders", {}, HANDLER)
    assert (await gov.proctor.submit(original, handler=Recorder(), key=key)).ok

    replay = key.sign(original.model_copy(update={"request_id": original.request_id + "-again"}))
    handler = Recorder()
    outcome = await gov.proctor.submit(replay, handler=handler, key=key)

    assert outcome.decision.rule_id == "identity:replayed_nonce"
    assert handler.calls == []


async def test_rate_limits_from_policy_deny_the_excess(gov: Harness) -> None:
    key = await gov.new_agent(role="limited")
    handler = Recorder()
    outcomes = [
        await gov.proctor.execute(key, "read:orders", {"n": i}, handler=handler) for i in range(4)
    ]
    assert [o.status for o in outcomes] == [ActionStatus.COMPLETED] * 3 + [ActionStatus.DENIED]
    assert outcomes[-1].decision.rule_id == "rate-limit"
    assert outcomes[-1].decision.reason == (
        "rate limit exceeded: actions_per_minute (3) reached in limited.yaml"
    )
    assert len(handler.calls) == 3
