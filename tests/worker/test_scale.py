"""Two `proctor worker` processes on one task queue share the work and one audit chain."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from proctor.stores.audit_log import AuditLog
from tests.helpers.processes import client_for, new_task_queue, worker_env, worker_process

ACTIONS = 40


async def test_two_worker_processes_share_actions_and_one_consistent_chain(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    pool, dsn = private_database
    queue = new_task_queue()
    env = worker_env(
        dsn, dev_server.client, queue, tmp_path / "state", PROCTOR_AUDIT_CHECKPOINT_ROWS="25"
    )
    gov = client_for(dev_server.client, pool, queue, env)
    async with (
        worker_process(env, tmp_path / "a.log") as first,
        worker_process(env, tmp_path / "b.log") as second,
    ):
        keys = [await gov.new_agent() for _ in range(4)]
        outcomes = await asyncio.gather(
            *(
                gov.proctor.execute(
                    keys[i % len(keys)], "read:orders", {"i": i}, handler=lambda p: p["i"]
                )
                for i in range(ACTIONS)
            )
        )
        assert all(o.ok for o in outcomes)
        served = [
            (await asyncio.to_thread(w.metrics)).get(
                'proctor_outcomes_total{status="completed"}', 0
            )
            for w in (first, second)
        ]

    print(f"completed per worker process: {served}")
    assert sum(served) == ACTIONS
    assert min(served) > 0, f"one worker did everything: {served}"
    rows = [r async for r in AuditLog(pool).rows()]
    per_workflow = Counter((r.workflow_id, r.event_type) for r in rows if r.workflow_id)
    assert len({o.workflow_id for o in outcomes}) == ACTIONS
    assert all(
        per_workflow[(o.workflow_id, step)] == 1
        for o in outcomes
        for step in ("decided", "trust_changed", "outcome")
    )
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), "gapless, no fork"
    report = await AuditLog(pool).verify()
    assert report.intact, report
    signed = await pool.fetchval("SELECT count(*) FROM audit_checkpoints")
    assert signed >= 1, "the checkpointers (one lock between them) signed the shared chain"
