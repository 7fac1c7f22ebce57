"""A `proctor worker` process killed (SIGKILL) at each step of a governed action, then
restarted: the action completes exactly once, the audit holds one row per step, the chain
verifies. Postgres lost for 30 s mid-flight: nothing runs before its audit row exists.

Steps are pinned by Postgres locks the test holds (the activity blocks inside its statement),
and the "committed but not reported" moment by pausing the worker's link to Temporal. Since
the local-steps patch the steps run inside the workflow task: the lost attempt is retried when
that task times out (10 s) on the restarted worker; workflows from before still retry their
regular activities after the 30 s start-to-close timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from proctor.stores.audit_log import AuditLog
from tests.helpers.harness import Harness, eventually
from tests.helpers.network import TcpProxy, tcp_proxy
from tests.helpers.pinning import Action, a_writer_waits, table_locked
from tests.helpers.processes import (
    WorkerProcess,
    client_for,
    new_task_queue,
    worker_env,
    worker_process,
)

ALLOWED_STEPS = ["decided", "trust_changed", "outcome"]


def setup(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
    temporal_address: str | None = None,
    dsn: str | None = None,
) -> tuple[Harness, dict[str, str]]:
    pool, own_dsn = private_database
    queue = new_task_queue()
    env = worker_env(dsn or own_dsn, dev_server.client, queue, tmp_path / "state")
    if temporal_address:
        env["TEMPORAL_ADDRESS"] = temporal_address
    return client_for(dev_server.client, pool, queue, env), env


@pytest.mark.parametrize(
    "table, step",
    [("request_nonces", "before the policy decision"), ("audit_log", "after the policy decision")],
)
async def test_killed_inside_a_step_the_action_completes_once(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
    table: str,
    step: str,
) -> None:
    pool, _ = private_database
    gov, env = setup(private_database, dev_server, tmp_path)
    async with worker_process(env, tmp_path / "worker.log", metrics=False) as worker:
        async with table_locked(pool, table):
            action = await Action(gov).start()
            await a_writer_waits(pool)  # the worker is inside the step
            worker.kill()
        assert action.calls == []
        await asyncio.to_thread(worker.start().wait_ready)
        await action.completes_exactly_once(ALLOWED_STEPS)


async def test_killed_during_the_approval_wait_the_vote_still_decides(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    gov, env = setup(private_database, dev_server, tmp_path)
    async with worker_process(env, tmp_path / "worker.log", metrics=False) as worker:
        action = await Action(gov, "refund_requests").start()
        waiting = await gov.wait_until(action.workflow_id, lambda p: p.pending is not None)
        assert waiting.pending is not None
        rows: Callable[[], Any] = lambda: AuditLog(gov.pool).for_workflow(action.workflow_id)  # noqa: E731
        await eventually(lambda: _has(rows, "escalated"))
        worker.kill()
        # Nothing answers queries now: the vote carries the digest from the approval card.
        await gov.vote(
            action.workflow_id,
            "alice@example.com",
            approve=True,
            request_digest=waiting.pending.card.request_digest,
        )
        await asyncio.sleep(1)
        assert action.calls == []
        await asyncio.to_thread(worker.start().wait_ready)
        await action.completes_exactly_once(
            ["decided", "escalated", "vote", "trust_changed", "outcome"]
        )


@asynccontextmanager
async def worker_behind_a_link(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> AsyncIterator[tuple[Harness, WorkerProcess, TcpProxy]]:
    """A worker process whose link to Temporal the test can hold (to lose a commit's report)."""
    host, port = dev_server.client.service_client.config.target_host.rsplit(":", 1)
    async with tcp_proxy(upstream_host=host, upstream_port=int(port)) as temporal_link:
        gov, env = setup(
            private_database, dev_server, tmp_path, temporal_address=temporal_link.address
        )
        async with worker_process(env, tmp_path / "worker.log", metrics=False) as worker:
            yield gov, worker, temporal_link


async def _has(rows: Callable[[], Any], event_type: str) -> bool:
    return any(r.event_type == event_type for r in await rows())


async def test_killed_after_the_audit_commit_before_the_activity_reports(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    """The row is committed, Temporal never hears of it; the retried step finds its row
    (idempotent by workflow step) instead of writing a second one."""
    pool, _ = private_database
    async with worker_behind_a_link(private_database, dev_server, tmp_path) as (
        gov,
        worker,
        temporal_link,
    ):
        async with table_locked(pool, "audit_log"):
            action = await Action(gov).start()
            await a_writer_waits(pool)
            temporal_link.pause()  # from here, the worker cannot report anything
        await eventually(
            lambda: _has(lambda: AuditLog(pool).for_workflow(action.workflow_id), "decided")
        )
        worker.kill()
        temporal_link.resume()
        assert action.calls == []
        await asyncio.to_thread(worker.start().wait_ready)
        # The lost attempt times out (the workflow task's 10 s) and is retried.
        await action.completes_exactly_once(ALLOWED_STEPS, seconds=150)


@pytest.mark.parametrize(
    "action, committed, steps",
    [
        (
            "refund_requests",
            "escalated",
            ["decided", "escalated", "vote", "trust_changed", "outcome"],
        ),
        ("read:orders", "decided", ALLOWED_STEPS),
    ],
)
async def test_a_step_retried_after_its_commit_writes_the_same_payload(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
    action: str,
    committed: str,
    steps: list[str],
) -> None:
    """Retries write the same thing: the worker dies after the `escalated` (or `decided`) row
    committed, before Temporal heard of it, and the agent's trust moves meanwhile. The retry
    on a new worker derives every payload from history (the decision, its time, the trust
    score judged), so it finds its rows instead of being refused as a different event (which
    failed the workflow: no outcome, the approver never asked)."""
    pool, _ = private_database
    async with worker_behind_a_link(private_database, dev_server, tmp_path) as (
        gov,
        worker,
        temporal_link,
    ):
        async with table_locked(pool, "audit_log"):
            pending = await Action(gov, action).start()
            await a_writer_waits(pool)
            temporal_link.pause()  # from here, the worker cannot report anything
        rows = lambda: AuditLog(pool).for_workflow(pending.workflow_id)  # noqa: E731
        await eventually(lambda: _has(rows, committed))
        await asyncio.sleep(0.5)  # any later write of the same task lands too
        worker.kill()
        await pool.execute(
            "UPDATE agents SET trust_score = trust_score - 7 WHERE agent_id = $1", pending.agent_id
        )
        temporal_link.resume()
        await asyncio.to_thread(worker.start().wait_ready)
        if committed == "escalated":
            await gov.wait_for_stage(pending.workflow_id, "awaiting_approval", seconds=60)
            await gov.vote(pending.workflow_id, "alice@example.com", approve=True)
        await pending.completes_exactly_once(steps, seconds=150)


async def test_a_vote_retried_after_its_row_committed_writes_the_same_payload(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    """The approved path: the worker dies after the `vote` row committed, before Temporal heard
    of it; the retry judges the vote again from history (its keys were read by an activity)
    and finds its row; the action runs once."""
    pool, _ = private_database
    async with worker_behind_a_link(private_database, dev_server, tmp_path) as (
        gov,
        worker,
        temporal_link,
    ):
        action = await Action(gov, "refund_requests").start()
        waiting = await gov.wait_until(action.workflow_id, lambda p: p.pending is not None)
        assert waiting.pending is not None
        rows = lambda: AuditLog(pool).for_workflow(action.workflow_id)  # noqa: E731
        await eventually(lambda: _has(rows, "escalated"))
        async with table_locked(pool, "audit_log"):
            await gov.vote(
                action.workflow_id,
                "alice@example.com",
                approve=True,
                request_digest=waiting.pending.card.request_digest,
            )
            await a_writer_waits(pool)  # the vote's row
            temporal_link.pause()
        await eventually(lambda: _has(rows, "vote"))
        worker.kill()
        temporal_link.resume()
        assert action.calls == []
        await asyncio.to_thread(worker.start().wait_ready)
        await action.completes_exactly_once(
            ["decided", "escalated", "vote", "trust_changed", "outcome"], seconds=150
        )


async def test_postgres_down_for_30_seconds_mid_flight(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
    postgres_server_dsn: str,
) -> None:
    """Every worker connection is dropped and new ones refused for 30 s: the steps retry with
    backoff, the action runs only after its `decided` row exists, nothing is lost or doubled."""
    pool, dsn = private_database
    async with postgres_link(dsn) as (database, proxied_dsn):
        gov, env = setup(private_database, dev_server, tmp_path, dsn=proxied_dsn)
        async with worker_process(env, tmp_path / "worker.log", metrics=False):
            first = await Action(gov).start()
            await first.completes_exactly_once(ALLOWED_STEPS)

            database.go_down()
            down_at = time.time()
            during = await Action(gov).start()
            escalated = await Action(gov, "refund_requests").start()
            await asyncio.sleep(30)
            assert during.calls == [] and escalated.calls == []
            database.come_up()

            await during.completes_exactly_once(ALLOWED_STEPS, seconds=120)
            decided = next(
                r
                for r in await AuditLog(pool).for_workflow(during.workflow_id)
                if r.event_type == "decided"
            )
            assert decided.recorded_at.timestamp() >= down_at + 30
            assert during.calls[0] >= decided.recorded_at.timestamp()
            await gov.wait_for_stage(escalated.workflow_id, "awaiting_approval", seconds=60)
            await gov.vote(escalated.workflow_id, "alice@example.com", approve=True)
            await escalated.completes_exactly_once(
                ["decided", "escalated", "vote", "trust_changed", "outcome"]
            )


@asynccontextmanager
async def postgres_link(dsn: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test database and a DSN that goes through it."""
    url = urlsplit(dsn)
    query = parse_qs(url.query)
    port = int(query.get("port", [url.port or 5432])[0])
    socket_dir = query.get("host", [""])[0] or (url.hostname or "")
    if socket_dir.startswith("/"):
        proxied = tcp_proxy(upstream_unix=f"{socket_dir}/.s.PGSQL.{port}")
    else:
        proxied = tcp_proxy(upstream_host=socket_dir or "127.0.0.1", upstream_port=port)
    async with proxied as proxy:
        credentials = url.netloc.rsplit("@", 1)[0] if "@" in url.netloc else ""
        yield proxy, f"postgresql://{credentials}@127.0.0.1:{proxy.port}{url.path}"
