"""The audit-log reads and the one write of the reconciler: which run outcomes are recorded,
who a workflow was about, and an outcome appended only if its key is still absent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from proctor.models import AuditEvent, AuditReceipt
from proctor.stores.audit_log import append_locked, lock_chain


@dataclass(frozen=True)
class Subject:
    """The agent and action a workflow's rows name."""

    agent_id: str
    action: str | None


class OutcomeStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def recorded_at(self, keys: Sequence[str]) -> dict[str, datetime]:
        """When each of `keys` that is in the ledger was recorded, in one query."""
        records = await self.pool.fetch(
            "SELECT idempotency_key, recorded_at FROM audit_log"
            " WHERE idempotency_key = ANY($1::text[])",
            list(keys),
        )
        return {r["idempotency_key"]: r["recorded_at"] for r in records}

    async def first_subject(self, workflow_id: str) -> Subject | None:
        """The agent and action of the workflow's first row naming an agent (its verified
        request), or None if it has none."""
        record = await self.pool.fetchrow(
            "SELECT agent_id, action FROM audit_log WHERE workflow_id = $1"
            " AND agent_id IS NOT NULL ORDER BY seq LIMIT 1",
            workflow_id,
        )
        return None if record is None else Subject(record["agent_id"], record["action"])

    async def append_if_absent(self, event: AuditEvent) -> AuditReceipt | None:
        """Append `event` (already protected) under the chain lock unless its idempotency key
        is there by now; None if it was, so two writers racing write one row."""
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_chain(conn)
            if await conn.fetchval(
                "SELECT 1 FROM audit_log WHERE idempotency_key = $1", event.idempotency_key
            ):
                return None
            return await append_locked(conn, event)
