"""Pinning a worker inside one step of a governed action, and counting how often it ran."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from proctor import ActionStatus
from proctor.stores.audit_log import AuditLog
from tests.helpers.harness import Harness, eventually


@asynccontextmanager
async def table_locked(pool: asyncpg.Pool, table: str) -> AsyncIterator[None]:
    """Writers of `table` block (inside their statement) until the block exits."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        yield


async def a_writer_waits(pool: asyncpg.Pool) -> None:
    async def waiting() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        )

    await eventually(waiting, seconds=30)


class Action:
    """One handler-mode action whose executions the test counts."""

    def __init__(self, gov: Harness, action: str = "read:orders") -> None:
        self.gov = gov
        self.action = action
        self.calls: list[float] = []
        self.task: asyncio.Task[Any] | None = None
        self.workflow_id = ""
        self.agent_id = ""

    async def start(self) -> Action:
        key = await self.gov.new_agent()
        self.agent_id = key.agent_id
        request_id = f"crash-{key.agent_id}"
        self.workflow_id = f"action-{request_id}"
        self.task = asyncio.create_task(
            self.gov.proctor.execute(
                key, self.action, {"n": 1}, handler=self._run, request_id=request_id
            )
        )
        return self

    def _run(self, params: dict[str, Any]) -> str:
        self.calls.append(time.time())
        return "done"

    async def completes_exactly_once(self, steps: list[str], seconds: float = 120) -> None:
        assert self.task is not None
        outcome = await asyncio.wait_for(self.task, seconds)
        assert outcome.status is ActionStatus.COMPLETED, outcome
        assert len(self.calls) == 1
        rows = await AuditLog(self.gov.pool).for_workflow(self.workflow_id)
        assert Counter(r.event_type for r in rows) == Counter(steps), [r.event_type for r in rows]
        report = await AuditLog(self.gov.pool).verify()
        assert report.intact, report
