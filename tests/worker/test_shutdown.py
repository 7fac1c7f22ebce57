"""SIGTERM stops a `proctor worker` gracefully: no new tasks, the activity in flight finishes
(its audit row commits), exit 0; the action then completes exactly once on the next worker
(the handler may already have been granted by the stopping worker: it still runs once)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from proctor.stores.audit_log import AuditLog
from tests.helpers.pinning import Action, a_writer_waits, table_locked
from tests.helpers.processes import client_for, new_task_queue, worker_env, worker_process


async def test_sigterm_lets_the_activity_in_flight_finish(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    pool, dsn = private_database
    queue = new_task_queue()
    env = worker_env(
        dsn, dev_server.client, queue, tmp_path / "state", PROCTOR_SHUTDOWN_GRACE_SECONDS="20"
    )
    gov = client_for(dev_server.client, pool, queue, env)
    async with worker_process(env, tmp_path / "worker.log", metrics=False) as worker:
        async with table_locked(pool, "audit_log"):
            action = await Action(gov).start()
            await a_writer_waits(pool)  # the `decided` append is in flight
            assert worker.process is not None
            worker.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert worker.process.poll() is None, "it waits for the activity in flight"
        code = await asyncio.to_thread(worker.process.wait, 30)
        assert code == 0, worker.log()
        assert "worker stopped" in worker.log()
        rows = await AuditLog(pool).for_workflow(action.workflow_id)
        assert [r.event_type for r in rows][:1] == ["decided"], "finished, not abandoned"

        await asyncio.to_thread(worker.start().wait_ready)
        await action.completes_exactly_once(["decided", "trust_changed", "outcome"])
