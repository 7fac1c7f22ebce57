"""Workflows ended outside Proctor are still accounted for: the reconciler, on the real dev
server and Postgres, seen from the operator who terminates, resets or loses a run."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowHandle as TemporalHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from proctor.audit.chain import ChainRow
from proctor.audit.keys import LedgerKeys
from proctor.client import agent_task_queue
from proctor.contract import ACTION_ATTRIBUTE, AGENT_ATTRIBUTE, GOVERNED_ACTION_WORKFLOW
from proctor.db import connect_pool
from proctor.metrics import REGISTRY
from proctor.models import (
    ActionRequest,
    AgentStatus,
    AuditEvent,
    ExecutionMode,
    ExecutionSpec,
    GovernedActionInput,
)
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor_server.worker.main import protected_log
from proctor_server.worker.reconciler import Reconciler, closed_runs_query
from tests.helpers.cli import arun
from tests.helpers.harness import POLICY_DIR, Harness, eventually, harness, policy_engine
from tests.helpers.processes import worker_env, worker_process


def reconciler_for(
    gov: Harness,
    temporal: WorkflowEnvironment,
    pool: asyncpg.Pool | None = None,
    every_seconds: float = 0.2,
) -> Reconciler:
    """A reconciler as the worker builds it (redacting ledger), on the test's task queue."""
    engine = policy_engine()
    ledger = protected_log(pool or gov.pool, lambda: engine, LedgerKeys.generate())
    return Reconciler(
        temporal.client, ledger, task_queue=gov.task_queue, every_seconds=every_seconds
    )


@asynccontextmanager
async def reconciling(reconciler: Reconciler) -> AsyncIterator[Reconciler]:
    stop = asyncio.Event()
    task = asyncio.create_task(reconciler.run(stop))
    try:
        yield reconciler
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def tool_mode(agent_id: str) -> ExecutionSpec:
    return ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(agent_id))


async def listed_as_ended(
    temporal: WorkflowEnvironment, gov: Harness, count: int, seconds: float = 20
) -> None:
    """Wait until visibility lists `count` abnormally closed runs on the test's queue (it is
    eventually consistent), so one reconciler pass sees them all."""
    query = closed_runs_query(gov.task_queue, None)
    async with asyncio.timeout(seconds):
        while True:
            if (await temporal.client.count_workflows(query)).count >= count:
                return
            await asyncio.sleep(0.1)


async def escalated(gov: Harness, params: dict[str, object] | None = None) -> ActionRequest:
    """A refund waiting for approval (tool mode: nothing of the agent's blocks on it)."""
    key = await gov.new_agent()
    request = key.new_request("refund_requests", params or {"orderId": 7}, tool_mode(key.agent_id))
    await gov.proctor.start(request)
    await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
    return request


async def current_run(temporal: WorkflowEnvironment, workflow_id: str) -> str:
    return (await temporal.client.get_workflow_handle(workflow_id).describe()).run_id


async def outcome_rows(pool: asyncpg.Pool, workflow_id: str) -> list[ChainRow]:
    return [r for r in await AuditLog(pool).for_workflow(workflow_id) if r.event_type == "outcome"]


async def wait_for_outcome(pool: asyncpg.Pool, workflow_id: str, seconds: float = 10) -> ChainRow:
    async with asyncio.timeout(seconds):
        while True:
            if rows := await outcome_rows(pool, workflow_id):
                assert len(rows) == 1, rows
                return rows[0]
            await asyncio.sleep(0.1)


async def wait_closed(
    handle: TemporalHandle[object, object], seconds: float = 20
) -> WorkflowExecutionStatus:
    async with asyncio.timeout(seconds):
        while True:
            status = (await handle.describe()).status
            if status is not None and status is not WorkflowExecutionStatus.RUNNING:
                return status
            await asyncio.sleep(0.1)


def outcomes_counted(status: str) -> float:
    return REGISTRY.get_sample_value("proctor_outcomes_total", {"status": status}) or 0.0


def cli_env(dsn: str, temporal: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    return {
        "PROCTOR_DATABASE_URL": dsn,
        "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_POLICY_DIR": str(POLICY_DIR),
    }


async def test_a_terminated_escalation_gets_its_outcome_within_seconds(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
    tmp_path: Path,
) -> None:
    pool, dsn = private_database
    reason = "stuck since the outage, ticket OPS-12"
    counted = outcomes_counted("terminated")
    async with (
        harness(dev_server.client, pool) as gov,
        reconciling(reconciler_for(gov, dev_server)),
    ):
        request = await escalated(gov)
        workflow_id = request.workflow_id
        run_id = await current_run(dev_server, workflow_id)
        assert await outcome_rows(pool, workflow_id) == []
        await dev_server.client.get_workflow_handle(workflow_id).terminate(reason=reason)
        row = await wait_for_outcome(pool, workflow_id, seconds=10)

        # The workflow's own query still answers from its last state; show must not.
        assert (await gov.proctor.progress(workflow_id)).stage.value == "awaiting_approval"
        shown = await arun(
            ["approvals", "show", workflow_id], cli_env(dsn, dev_server, tmp_path), tmp_path
        )

    assert row.idempotency_key == f"{workflow_id}:{run_id}:outcome"
    assert (row.actor, row.agent_id, row.action) == ("proctor", request.agent_id, "refund_requests")
    assert json.loads(row.payload) == {
        "status": "terminated",
        "execution_status": "Terminated",
        "detail": reason,
        "identity": dev_server.client.identity,
        "detected_by": "reconciler",
    }
    rows = await AuditLog(pool).for_workflow(workflow_id)
    assert "escalated" in [r.event_type for r in rows] and rows[-1] == row
    report = await AuditLog(pool).verify()
    assert report.intact, report.first_break
    assert outcomes_counted("terminated") == counted + 1

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:2] == [
        f"{workflow_id}: closed",
        f"  ended: terminated outside Proctor: {reason} (by {dev_server.client.identity})",
    ]
    assert "awaiting" not in shown.stdout
    assert lines[-1].split()[2] == "outcome"


async def test_timed_out_and_failed_runs_get_their_outcome(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = private_database
    async with harness(dev_server.client, pool) as gov:
        # Started with an execution timeout shorter than the approval wait.
        key = await gov.new_agent()
        timing = key.new_request("refund_requests", {"orderId": 8}, tool_mode(key.agent_id))
        timed = await dev_server.client.start_workflow(
            GOVERNED_ACTION_WORKFLOW,
            GovernedActionInput(request=timing),
            id=timing.workflow_id,
            task_queue=gov.task_queue,
            execution_timeout=timedelta(seconds=5),
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(AGENT_ATTRIBUTE, key.agent_id),
                    SearchAttributePair(ACTION_ATTRIBUTE, "refund_requests"),
                ]
            ),
        )
        await gov.wait_for_stage(timing.workflow_id, "awaiting_approval")
        # The ledger refuses the escalation's row: the workflow fails closed.
        await pool.execute("""
            CREATE FUNCTION refuse_escalated() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'no escalations today' USING ERRCODE = 'insufficient_privilege';
            END $$;
            CREATE TRIGGER refuse_escalated BEFORE INSERT ON audit_log FOR EACH ROW
                WHEN (NEW.event_type = 'escalated') EXECUTE FUNCTION refuse_escalated();
        """)
        failing = key.new_request("refund_requests", {"orderId": 9}, tool_mode(key.agent_id))
        failed = await gov.proctor.start(failing)
        assert await wait_closed(failed) is WorkflowExecutionStatus.FAILED
        await pool.execute("DROP TRIGGER refuse_escalated ON audit_log")
        assert await wait_closed(timed) is WorkflowExecutionStatus.TIMED_OUT

        await listed_as_ended(dev_server, gov, 2)
        assert len(await reconciler_for(gov, dev_server).reconcile()) == 2

    (timed_row,) = await outcome_rows(pool, timing.workflow_id)
    assert json.loads(timed_row.payload) == {
        "status": "terminated",
        "execution_status": "TimedOut",
        "detail": "the workflow's execution timeout passed",
        "detected_by": "reconciler",
    }
    (failed_row,) = await outcome_rows(pool, failing.workflow_id)
    payload = json.loads(failed_row.payload)
    assert (payload["status"], payload["execution_status"]) == ("failed", "Failed")
    assert "no escalations today" in payload["detail"], payload
    assert failed_row.idempotency_key == (
        f"{failing.workflow_id}:{await current_run(dev_server, failing.workflow_id)}:outcome"
    )
    assert (await AuditLog(pool).verify()).intact


async def test_runs_that_recorded_their_own_outcome_get_no_second_one(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = private_database
    calls: list[object] = []
    async with harness(dev_server.client, pool) as gov:
        key = await gov.new_agent()
        finished = [
            await gov.proctor.execute(key, "read:orders", {}, handler=calls.append),
            await gov.proctor.execute(key, "delete:orders", {}, handler=calls.append),
        ]
        # Terminated just after writing its outcome (e.g. while its messages were closing):
        # the row is there under the run's key, so nothing more is written.
        wrote_own = await escalated(gov)
        own_run = await current_run(dev_server, wrote_own.workflow_id)
        await AuditLog(pool).append(
            AuditEvent(
                idempotency_key=f"{wrote_own.workflow_id}:{own_run}:outcome",
                event_type="outcome",
                workflow_id=wrote_own.workflow_id,
                agent_id=wrote_own.agent_id,
                action=wrote_own.action,
                actor=wrote_own.agent_id,
                payload={"status": "rejected"},
            )
        )
        # A run from before keys carried the run id: its outcome row has the legacy key.
        legacy = await escalated(gov)
        await AuditLog(pool).append(
            AuditEvent(
                idempotency_key=f"{legacy.workflow_id}:outcome",
                event_type="outcome",
                workflow_id=legacy.workflow_id,
                agent_id=legacy.agent_id,
                action=legacy.action,
                actor=legacy.agent_id,
                payload={"status": "rejected"},
            )
        )
        unrecorded = await escalated(gov)
        for request in (wrote_own, legacy, unrecorded):
            await dev_server.client.get_workflow_handle(request.workflow_id).terminate(
                reason="cleanup"
            )

        await listed_as_ended(dev_server, gov, 3)
        reconciler = reconciler_for(gov, dev_server)
        written = await reconciler.reconcile()
        assert await reconciler.reconcile() == []
        assert await reconciler_for(gov, dev_server).reconcile() == []  # a fresh worker too

    assert [o.status.value for o in finished] == ["completed", "denied"] and calls == [{}]
    assert len(written) == 1
    for outcome in finished:
        rows = await outcome_rows(pool, outcome.workflow_id)
        assert len(rows) == 1 and "detected_by" not in json.loads(rows[0].payload)
    for request in (wrote_own, legacy):
        (row,) = await outcome_rows(pool, request.workflow_id)
        assert json.loads(row.payload) == {"status": "rejected"}
    (row,) = await outcome_rows(pool, unrecorded.workflow_id)
    assert json.loads(row.payload)["detected_by"] == "reconciler"


async def test_two_reconcilers_at_once_write_one_row_per_run(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
) -> None:
    pool, dsn = private_database
    other_pool = await connect_pool(dsn)
    counted = outcomes_counted("terminated")
    try:
        async with harness(dev_server.client, pool) as gov:
            requests = [await escalated(gov) for _ in range(4)]
            for request in requests:
                await dev_server.client.get_workflow_handle(request.workflow_id).terminate(
                    reason=f"duplicate of {requests[0].request_id}"
                )
            first, second = (
                reconciler_for(gov, dev_server),
                reconciler_for(gov, dev_server, other_pool),
            )
            await listed_as_ended(dev_server, gov, len(requests))
            one, two = await asyncio.gather(first.reconcile(), second.reconcile())
            again = await asyncio.gather(first.reconcile(), second.reconcile())
    finally:
        await other_pool.close()

    assert len(one) + len(two) == len(requests) and list(again) == [[], []]
    for request in requests:
        assert len(await outcome_rows(pool, request.workflow_id)) == 1
    assert outcomes_counted("terminated") == counted + len(requests)
    assert (await AuditLog(pool).verify()).intact


async def test_a_reset_terminates_the_old_run_and_the_new_one_goes_on(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = private_database
    temporal = dev_server.client
    async with harness(temporal, pool) as gov:
        request = await escalated(gov)
        handle = temporal.get_workflow_handle(request.workflow_id)
        old_run = await current_run(dev_server, request.workflow_id)
        history = await handle.fetch_history()
        last_task = max(
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        reset = await temporal.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=temporal.namespace,
                reason="reset by ops after a bad deploy",
                workflow_execution=WorkflowExecution(
                    workflow_id=request.workflow_id, run_id=old_run
                ),
                workflow_task_finish_event_id=last_task,
                request_id=str(uuid.uuid4()),
            )
        )
        await listed_as_ended(dev_server, gov, 1)
        assert len(await reconciler_for(gov, dev_server).reconcile()) == 1
        await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
        described = await handle.describe()
        await handle.terminate(reason="test over")  # nothing left waiting on a dead queue

    assert described.run_id == reset.run_id != old_run
    assert described.status is WorkflowExecutionStatus.RUNNING
    (row,) = await outcome_rows(pool, request.workflow_id)
    assert row.idempotency_key == f"{request.workflow_id}:{old_run}:outcome"
    payload = json.loads(row.payload)
    assert payload["status"] == "terminated" and "reset by ops" in payload["detail"]


async def test_the_worker_process_reconciles_and_counts_it(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
    tmp_path: Path,
) -> None:
    """`proctor worker` runs the reconciler: a run terminated while no worker was up gets its
    row from the next worker's first pass, and its /metrics counts it."""
    pool, dsn = private_database
    async with harness(dev_server.client, pool) as gov:
        request = await escalated(gov)
        queue = gov.task_queue
    await dev_server.client.get_workflow_handle(request.workflow_id).terminate(
        reason="terminated while the workers were down"
    )
    env = worker_env(dsn, dev_server.client, queue, tmp_path / "state")
    terminated = 'proctor_outcomes_total{status="terminated"}'
    async with worker_process(env, tmp_path / "worker.log") as worker:
        row = await wait_for_outcome(pool, request.workflow_id, seconds=30)
        # The row commits a moment before the counter moves: scrape until it has.
        await eventually(lambda: worker.metrics().get(terminated) is not None, seconds=10)
        samples = worker.metrics()
    assert json.loads(row.payload)["detail"] == "terminated while the workers were down"
    assert samples.get(terminated) == 1.0


async def test_a_terminated_reinstatement_is_recorded_but_not_counted_as_an_action(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = private_database
    counted = outcomes_counted("terminated")
    async with harness(dev_server.client, pool) as gov:
        key = await gov.new_agent()
        await AgentStore(pool).set_status(key.agent_id, AgentStatus.SUSPENDED)
        workflow_id = await gov.operator.request_reinstatement(
            key.agent_id, requested_by="alice@example.com", reason="false positive"
        )
        await gov.wait_for_stage(workflow_id, "awaiting_approval")
        run_id = await current_run(dev_server, workflow_id)
        await dev_server.client.get_workflow_handle(workflow_id).terminate(reason="asked twice")
        await listed_as_ended(dev_server, gov, 1)
        assert len(await reconciler_for(gov, dev_server).reconcile()) == 1

    (row,) = await outcome_rows(pool, workflow_id)
    assert row.idempotency_key == f"{workflow_id}:{run_id}:outcome"
    assert (row.agent_id, row.action, row.actor) == (key.agent_id, "reinstate", "proctor")
    assert json.loads(row.payload)["detail"] == "asked twice"
    assert outcomes_counted("terminated") == counted  # proctor_outcomes_total counts actions
