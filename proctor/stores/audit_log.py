"""The audit log in Postgres: serialised, batched, idempotent appends and streaming reads.

Appends take one transaction-scoped advisory lock (the chain lock), so the chain never forks
however many workers write; `seq` is assigned under that lock and is therefore gapless.
Appends that arrive while a batch is being written wait and go together in the next one: one
transaction, one lock acquisition and one COPY for all of them (group commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import asyncpg

from proctor.audit.chain import GENESIS_HASH, ChainReport, ChainRow, ChainVerifier, sealed
from proctor.canonical import canonical_text
from proctor.errors import ConflictError
from proctor.models import AuditEvent, AuditReceipt
from proctor.stores.connection import Connection

CHAIN_LOCK_ID = 0x61756469745F6C  # "audit_l"
COLUMN_NAMES = (
    "seq",
    "recorded_at",
    "idempotency_key",
    "workflow_id",
    "event_type",
    "agent_id",
    "action",
    "actor",
    "payload",
    "prev_hash",
    "hash",
)
COLUMNS = ", ".join(COLUMN_NAMES)
HASHING_COLUMNS = (
    COLUMNS + ", to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
)
"""COLUMNS plus the time as hashed, formatted by Postgres (on its own core) for verification."""
MAX_BATCH = 512


class IdempotencyConflict(ConflictError):
    """The same idempotency key was used for a different event: a bug, never ignored."""


@dataclass
class _Pending:
    event: AuditEvent
    result: asyncio.Future[AuditReceipt]


class Protector(Protocol):
    async def protect(self, event: AuditEvent) -> AuditEvent: ...


class AuditLog:
    def __init__(
        self, pool: asyncpg.Pool, *, max_batch: int = MAX_BATCH, protector: Protector | None = None
    ) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.protector = protector
        """Redaction/encryption applied to every payload before it is hashed."""
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, event: AuditEvent) -> AuditReceipt:
        """Append one event; concurrent calls share a transaction. Idempotent per key."""
        event = await self.protect(event)
        pending = _Pending(event, asyncio.get_running_loop().create_future())
        self._waiting.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        return await asyncio.shield(pending.result)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    outcomes = await append_batch_locked(conn, [p.event for p in batch])
            except BaseException as exc:
                for pending in batch:
                    if not pending.result.done():
                        pending.result.set_exception(_copy(exc))
                if not isinstance(exc, Exception):
                    raise
                continue
            for pending, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    pending.result.set_exception(outcome)
                else:
                    pending.result.set_result(outcome)

    async def append_many(self, events: Sequence[AuditEvent]) -> list[AuditReceipt]:
        """Append events in order in one transaction; any conflict aborts them all."""
        events = [await self.protect(event) for event in events]
        async with self.pool.acquire() as conn, conn.transaction():
            outcomes = await append_batch_locked(conn, events)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
        return [o for o in outcomes if isinstance(o, AuditReceipt)]

    async def protect(self, event: AuditEvent) -> AuditEvent:
        """The event as it will be stored (callers appending under their own lock use this)."""
        return event if self.protector is None else await self.protector.protect(event)

    async def pages(
        self, start_seq: int = 1, end_seq: int | None = None, batch: int = 10_000
    ) -> AsyncIterator[list[asyncpg.Record]]:
        """Raw records (COLUMNS + the hashed time text) in seq order, a keyset page at a time;
        the next page is fetched while the caller works on this one."""
        last = end_seq if end_seq is not None else 2**62
        query = (
            f"SELECT {HASHING_COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2"
            " ORDER BY seq LIMIT $3"
        )
        upcoming: asyncio.Future[list[asyncpg.Record]] | None = asyncio.ensure_future(
            self.pool.fetch(query, start_seq, last, batch)
        )
        try:
            while upcoming is not None:
                records = await upcoming
                upcoming = None
                if len(records) == batch and records[-1]["seq"] < last:
                    upcoming = asyncio.ensure_future(
                        self.pool.fetch(query, records[-1]["seq"] + 1, last, batch)
                    )
                if records:
                    yield records
        finally:
            if upcoming is not None:
                upcoming.cancel()

    async def rows(
        self, start_seq: int = 1, end_seq: int | None = None, batch: int = 10_000
    ) -> AsyncIterator[ChainRow]:
        """Rows from `start_seq` (to `end_seq`) in seq order."""
        async for page in self.pages(start_seq, end_seq, batch):
            for record in page:
                yield ChainRow(*record)

    async def head(self) -> tuple[int, str]:
        """The last row's seq and hash ((0, genesis) for an empty log)."""
        record = await self.pool.fetchrow(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        )
        return (0, GENESIS_HASH) if record is None else (record["seq"], record["hash"])

    async def latest(self, count: int) -> list[ChainRow]:
        """The last `count` rows, oldest first."""
        head, _ = await self.head()
        return [row async for row in self.rows(start_seq=max(1, head - count + 1))]

    async def row_at(self, seq: int) -> ChainRow | None:
        record = await self.pool.fetchrow(f"SELECT {COLUMNS} FROM audit_log WHERE seq = $1", seq)
        return None if record is None else row_of(record)

    async def rows_at(self, seqs: Collection[int]) -> dict[int, ChainRow]:
        """The rows at these seqs that exist, by seq, with the time as hashed (one read)."""
        records = await self.pool.fetch(
            f"SELECT {HASHING_COLUMNS} FROM audit_log WHERE seq = ANY($1::bigint[])", list(seqs)
        )
        return {record["seq"]: ChainRow(*record) for record in records}

    async def hash_at(self, seq: int) -> str | None:
        """The stored hash of the row at `seq` (None: no row there)."""
        digest: str | None = await self.pool.fetchval(
            "SELECT hash FROM audit_log WHERE seq = $1", seq
        )
        return digest

    async def seconds_waiting_after(self, seq: int) -> float | None:
        """How long the first row after `seq` has existed, by Postgres' clock (the one clock
        every worker shares); None when there is no row after `seq`."""
        age = await self.pool.fetchval(
            "SELECT extract(epoch FROM now() - recorded_at) FROM audit_log"
            " WHERE seq > $1 ORDER BY seq LIMIT 1",
            seq,
        )
        return None if age is None else float(age)

    async def for_workflow(
        self, workflow_id: str, event_types: Collection[str] | None = None
    ) -> list[ChainRow]:
        """One workflow's rows in seq order (only those of `event_types`, when given)."""
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                f"SELECT {COLUMNS} FROM audit_log WHERE workflow_id = $1"
                " AND ($2::text[] IS NULL OR event_type = ANY($2::text[])) ORDER BY seq",
                workflow_id,
                None if event_types is None else list(event_types),
            )
        return [row_of(r) for r in records]

    async def recent_of_type(self, event_type: str, limit: int) -> list[ChainRow]:
        """The newest `limit` rows of one event type, oldest first."""
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                f"SELECT {COLUMNS} FROM (SELECT * FROM audit_log WHERE event_type = $1"
                " ORDER BY seq DESC LIMIT $2) recent ORDER BY seq",
                event_type,
                limit,
            )
        return [row_of(r) for r in records]

    async def verify_links(self, start_seq: int = 1, prev_hash: str = GENESIS_HASH) -> ChainReport:
        """Every link from `start_seq` on (no checkpoints: see `proctor.audit.verify`)."""
        verifier = ChainVerifier(start_seq, prev_hash)
        async for page in self.pages(start_seq):
            if verifier.feed_records(page) < len(page):
                break
        return verifier.report()

    async def verify(self) -> ChainReport:
        """Every link from the start of the table (or from the latest prune tombstone)."""
        tombstone = await self.pool.fetchrow(
            "SELECT upto_seq, hash FROM audit_tombstones ORDER BY upto_seq DESC LIMIT 1"
        )
        if tombstone is None:
            return await self.verify_links()
        return await self.verify_links(tombstone["upto_seq"] + 1, tombstone["hash"])


async def lock_chain(conn: Connection) -> None:
    """Serialise chain writers until the surrounding transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK_ID)


def _receipt_if_same(row: ChainRow, event: AuditEvent, payload: str) -> AuditReceipt:
    same = (
        row.event_type == event.event_type
        and row.workflow_id == event.workflow_id
        and row.agent_id == event.agent_id
        and row.action == event.action
        and row.actor == event.actor
        and row.payload == payload
    )
    if not same:
        raise IdempotencyConflict(
            f"idempotency key {event.idempotency_key!r} was already used for a different "
            f"event (seq {row.seq})"
        )
    return AuditReceipt(seq=row.seq, hash=row.hash)


async def existing_receipt(conn: Connection, event: AuditEvent) -> AuditReceipt | None:
    """The row already written under this event's key (same content), else None."""
    record = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM audit_log WHERE idempotency_key = $1", event.idempotency_key
    )
    if record is None:
        return None
    return _receipt_if_same(row_of(record), event, canonical_text(event.payload))


async def append_batch_locked(
    conn: Connection,
    events: Sequence[AuditEvent],
) -> list[AuditReceipt | IdempotencyConflict]:
    """Append events in order inside the caller's transaction, under the chain lock.

    Returns, per event, its receipt or the conflict that refused it (the others still go in).
    """
    await lock_chain(conn)
    payloads = [canonical_text(event.payload) for event in events]
    known = {
        record["idempotency_key"]: row_of(record)
        for record in await conn.fetch(
            f"SELECT {COLUMNS} FROM audit_log WHERE idempotency_key = ANY($1::text[])",
            [event.idempotency_key for event in events],
        )
    }
    last = await conn.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    if last is None:  # empty, or everything pruned: continue from the last tombstone
        last = await conn.fetchrow(
            "SELECT upto_seq AS seq, hash FROM audit_tombstones ORDER BY upto_seq DESC LIMIT 1"
        )
    seq = 0 if last is None else last["seq"]
    prev_hash = GENESIS_HASH if last is None else last["hash"]
    outcomes: list[AuditReceipt | IdempotencyConflict] = []
    fresh: list[ChainRow] = []
    for event, payload in zip(events, payloads, strict=True):
        found = known.get(event.idempotency_key)
        if found is not None:
            try:
                outcomes.append(_receipt_if_same(found, event, payload))
            except IdempotencyConflict as conflict:
                outcomes.append(conflict)
            continue
        seq += 1
        row = sealed(
            ChainRow(
                seq=seq,
                recorded_at=datetime.now(UTC),
                idempotency_key=event.idempotency_key,
                workflow_id=event.workflow_id,
                event_type=event.event_type,
                agent_id=event.agent_id,
                action=event.action,
                actor=event.actor,
                payload=payload,
                prev_hash=prev_hash,
                hash="",
            )
        )
        prev_hash = row.hash
        known[event.idempotency_key] = row
        fresh.append(row)
        outcomes.append(AuditReceipt(seq=row.seq, hash=row.hash))
    if fresh:
        await conn.copy_records_to_table(
            "audit_log",
            columns=COLUMN_NAMES,
            records=[tuple(getattr(row, name) for name in COLUMN_NAMES) for row in fresh],
        )
    return outcomes


async def append_locked(conn: Connection, event: AuditEvent) -> AuditReceipt:
    """Append one event inside the caller's transaction (taking the chain lock if not held)."""
    (outcome,) = await append_batch_locked(conn, [event])
    if isinstance(outcome, IdempotencyConflict):
        raise outcome
    return outcome


def row_of(record: asyncpg.Record) -> ChainRow:
    """A row from a record selected as COLUMNS (in that order)."""
    return ChainRow(*record)


def _copy(exc: BaseException) -> BaseException:
    """A per-waiter copy, so one waiter's traceback doesn't grow into another's."""
    try:
        clone = type(exc)(*exc.args)
    except Exception:
        return exc
    clone.__cause__ = exc
    return clone
