"""A `proctor worker` process exposes Proctor's metrics, the Temporal SDK's metrics, and JSON
logs carrying workflow and request ids."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

import proctor.approvals.slack
import proctor.client
import proctor.policy.reload
import proctor_server.activities.audit
import proctor_server.worker.main
import proctor_server.worker.reconciler
from proctor.metrics import APPROVALS_PENDING
from proctor.settings import ProctorSettings
from proctor_server.worker.observability import configure_logging, count_pending_approvals
from tests.helpers.harness import Harness, eventually, harness
from tests.helpers.processes import (
    client_for,
    new_task_queue,
    worker_env,
    worker_process,
)


async def test_worker_metrics_sdk_metrics_and_json_logs(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    pool, dsn = private_database
    queue = new_task_queue()
    env = worker_env(
        dsn,
        dev_server.client,
        queue,
        tmp_path / "state",
        PROCTOR_LOG_FORMAT="json",
        PROCTOR_AUDIT_CHECKPOINT_SECONDS="0.5",
    )
    gov = client_for(dev_server.client, pool, queue, env)
    async with worker_process(env, tmp_path / "worker.log", sdk_metrics=True) as worker:
        key = await gov.new_agent()
        assert (await gov.proctor.execute(key, "read:orders", {}, handler=lambda p: 1)).ok
        assert not (await gov.proctor.execute(key, "delete:customer", {}, handler=lambda p: 1)).ok
        request_id = f"metrics-{key.agent_id}"
        waiting = asyncio.create_task(
            gov.proctor.execute(
                key, "refund_requests", {"amount": 3}, handler=lambda p: "ok", request_id=request_id
            )
        )
        await gov.wait_for_stage(f"action-{request_id}", "awaiting_approval")
        await gov.vote(f"action-{request_id}", "alice@example.com", approve=True)
        assert (await waiting).ok

        async def checkpointed() -> bool:
            samples = await asyncio.to_thread(worker.metrics)
            return samples.get("proctor_audit_chain_verified_seq", 0) >= 8

        await eventually(checkpointed, seconds=20)
        samples = await asyncio.to_thread(worker.metrics)
        assert samples["proctor_audit_chain_intact"] == 1
        assert samples['proctor_decisions_total{effect="allow"}'] == 1
        assert samples['proctor_decisions_total{effect="deny"}'] == 1
        assert samples['proctor_decisions_total{effect="escalate"}'] == 1
        assert samples['proctor_outcomes_total{status="completed"}'] == 2
        assert samples['proctor_outcomes_total{status="denied"}'] == 1
        assert samples['proctor_audit_append_seconds_count{kind="step"}'] >= 5
        assert samples['proctor_audit_append_seconds_count{kind="outcome"}'] == 3
        assert samples['proctor_approval_decision_seconds_count{outcome="completed"}'] == 1
        assert "proctor_approvals_pending" in samples
        assert samples["proctor_audit_append_failures_total"] == 0

        sdk = await asyncio.to_thread(worker.metrics, worker.sdk_metrics_port)
        assert any(name.startswith("temporal_workflow_task_execution_latency") for name in sdk), (
            sorted(sdk)[:20]
        )
        assert any(name.startswith("temporal_activity_execution_latency") for name in sdk)

    logs = worker.json_logs()
    assert logs, worker.log()
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in logs)
    decided = [
        e
        for e in logs
        if str(e["message"]).startswith("decided ")
        and e.get("workflow_id") == f"action-{request_id}"
    ]
    assert decided, logs
    assert decided[0]["request_id"] == request_id
    assert decided[0]["activity"] == "proctor.record_audit"
    assert str(decided[0]["run_id"]).strip() not in ("", "None")


async def test_pending_approvals_gauge_counts_the_cluster(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    key = await gov.new_agent()
    request_id = f"pending-{key.agent_id}"
    waiting = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {"amount": 3}, handler=lambda p: "ok", request_id=request_id
        )
    )
    await gov.wait_until_listed(f"action-{request_id}")
    counter = asyncio.create_task(count_pending_approvals(dev_server.client, every_seconds=0.1))
    try:
        await eventually(lambda: APPROVALS_PENDING._value.get() >= 1, seconds=10)
    finally:
        counter.cancel()
        await gov.vote(f"action-{request_id}", "alice@example.com", approve=True)
        await waiting


async def test_worker_in_process_harness_still_counts(
    dev_server: WorkflowEnvironment, private_database: tuple[asyncpg.Pool, str]
) -> None:
    """Metrics are counted by the activities themselves, whichever process runs them."""
    from proctor.metrics import DECISIONS

    pool, _ = private_database
    before = DECISIONS.labels(effect="allow")._value.get()
    async with harness(dev_server.client, pool) as gov:
        key = await gov.new_agent()
        await gov.proctor.execute(key, "read:orders", {}, handler=lambda p: 1)
    assert DECISIONS.labels(effect="allow")._value.get() == before + 1


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: pytest's come back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_every_module_logs_under_its_own_name_through_the_one_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Loggers are named after their modules, inside `proctor` or not (worker/, activities/):
    the configuration covers them all."""
    configure_logging(ProctorSettings(log_level="INFO", log_format="text"))
    modules = [
        proctor_server.worker.main,
        proctor_server.worker.reconciler,
        proctor_server.activities.audit,
        proctor.client,
        proctor.policy.reload,
        proctor.approvals.slack,
    ]
    for module in modules:
        module.log.info("hello from %s", module.__name__)
        module.log.debug("below the level")
    logged = capsys.readouterr().err
    for module in modules:
        assert f" INFO {module.__name__} hello from {module.__name__}\n" in logged, logged
    assert "below the level" not in logged
