"""The audit log in Postgres: serialised, idempotent appends and streaming verification.

Appends take one transaction-scoped advisory lock (the chain lock), so the chain never forks
however many workers write; `seq` is assigned under that lock and is therefore gapless.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from proctor.audit.chain import GENESIS_HASH, ChainReport, ChainRow, ChainVerifier, entry_hash
from proctor.canonical import canonical_text
from proctor.models import AuditEvent, AuditReceipt

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, bare or checked out of a pool."""
CHAIN_LOCK_ID = 0x61756469745F6C  # "audit_l"
_COLUMNS = ("seq, recorded_at, idempotency_key, workflow_id, event_type, agent_id, action, "
            "actor, payload, prev_hash, hash")


class IdempotencyConflict(ValueError):
    """The same idempotency key was used for a different event: a bug, never ignored."""


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def append(self, event: AuditEvent) -> AuditReceipt:
        async with self.pool.acquire() as conn, conn.transaction():
            return await append_locked(conn, event)

    async def rows(self, start_seq: int = 1, batch: int = 5000) -> AsyncIterator[ChainRow]:
        """All rows from `start_seq` in seq order, fetched in batches (keyset paging)."""
        next_seq = start_seq
        while True:
            async with self.pool.acquire() as conn:
                records = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
                    next_seq, batch,
                )
            for record in records:
                yield _row(record)
            if len(records) < batch:
                return
            next_seq = records[-1]["seq"] + 1

    async def for_workflow(self, workflow_id: str) -> list[ChainRow]:
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                f"SELECT {_COLUMNS} FROM audit_log WHERE workflow_id = $1 ORDER BY seq",
                workflow_id,
            )
        return [_row(r) for r in records]

    async def recent_of_type(self, event_type: str, limit: int) -> list[ChainRow]:
        """The newest `limit` rows of one event type, oldest first."""
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                f"SELECT {_COLUMNS} FROM (SELECT * FROM audit_log WHERE event_type = $1"
                " ORDER BY seq DESC LIMIT $2) recent ORDER BY seq", event_type, limit)
        return [_row(r) for r in records]

    async def verify(self) -> ChainReport:
        verifier = ChainVerifier()
        async for row in self.rows():
            if not verifier.feed(row):
                break
        return verifier.report()


async def lock_chain(conn: Connection) -> None:
    """Serialise chain writers until the surrounding transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK_ID)


async def existing_receipt(conn: Connection, event: AuditEvent) -> AuditReceipt | None:
    """The row already written under this event's key (same content), else None."""
    record = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM audit_log WHERE idempotency_key = $1", event.idempotency_key
    )
    if record is None:
        return None
    row = _row(record)
    same = (
        row.event_type == event.event_type and row.workflow_id == event.workflow_id
        and row.agent_id == event.agent_id and row.action == event.action
        and row.actor == event.actor and row.payload == canonical_text(event.payload)
    )
    if not same:
        raise IdempotencyConflict(
            f"idempotency key {event.idempotency_key!r} was already used for a different "
            f"event (seq {row.seq})"
        )
    return AuditReceipt(seq=row.seq, hash=row.hash)


async def append_locked(conn: Connection, event: AuditEvent) -> AuditReceipt:
    """Append inside the caller's transaction (taking the chain lock if not yet held)."""
    await lock_chain(conn)
    found = await existing_receipt(conn, event)
    if found is not None:
        return found
    last = await conn.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq = 1 if last is None else last["seq"] + 1
    prev_hash = GENESIS_HASH if last is None else last["hash"]
    recorded_at = datetime.now(UTC)
    payload_text = canonical_text(event.payload)
    digest = entry_hash(
        seq=seq, recorded_at=recorded_at, idempotency_key=event.idempotency_key,
        workflow_id=event.workflow_id, event_type=event.event_type, agent_id=event.agent_id,
        action=event.action, actor=event.actor, payload=event.payload, prev_hash=prev_hash,
    )
    await conn.execute(
        f"INSERT INTO audit_log ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
        seq, recorded_at, event.idempotency_key, event.workflow_id, event.event_type,
        event.agent_id, event.action, event.actor, payload_text, prev_hash, digest,
    )
    return AuditReceipt(seq=seq, hash=digest)


def _row(record: asyncpg.Record) -> ChainRow:
    return ChainRow(**dict(record.items()))
