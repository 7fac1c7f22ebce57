"""Retention: prune the expired prefix of the chain at a checkpoint, leaving a signed tombstone.

The chain is one sequence, so only a prefix can go, and only up to a signed checkpoint every
row of which is older than the retention period. The tombstone (signed, in the database and in
the external sink, linked to the sink line before it like a checkpoint) records the last pruned
row's hash, so what remains verifies from it. Active legal holds block pruning, in Postgres
itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from proctor.audit.chain import ChainVerifier
from proctor.audit.checkpoints import CheckpointBody, DirectorySink, lock_sink, sign
from proctor.audit.keys import LedgerKeys
from proctor.errors import IntegrityError
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog, append_locked, lock_chain


class PruneRefused(IntegrityError):
    """A legal hold is active, or the rows to prune do not verify."""


@dataclass(frozen=True)
class PrunePlan:
    upto_seq: int
    """The last row that would go (a checkpointed seq), 0 when nothing has expired."""
    rows: int
    previous_tombstone: int


@dataclass(frozen=True)
class Hold:
    hold_id: int
    reason: str
    placed_by: str
    placed_at: datetime


async def active_holds(pool: asyncpg.Pool) -> list[Hold]:
    records = await pool.fetch(
        "SELECT hold_id, reason, placed_by, placed_at FROM audit_legal_holds"
        " WHERE released_at IS NULL ORDER BY hold_id"
    )
    return [Hold(**dict(r.items())) for r in records]


async def place_hold(audit: AuditLog, reason: str, placed_by: str) -> int:
    async with audit.pool.acquire() as conn, conn.transaction():
        hold_id: int = await conn.fetchval(
            "INSERT INTO audit_legal_holds (reason, placed_by) VALUES ($1, $2) RETURNING hold_id",
            reason,
            placed_by,
        )
        await append_locked(
            conn,
            AuditEvent(
                idempotency_key=f"legal-hold:{hold_id}:placed",
                event_type="legal_hold_placed",
                actor=placed_by,
                payload={"hold_id": hold_id, "reason": reason},
            ),
        )
    return hold_id


async def release_hold(audit: AuditLog, hold_id: int, released_by: str) -> bool:
    async with audit.pool.acquire() as conn, conn.transaction():
        released = await conn.fetchval(
            "UPDATE audit_legal_holds SET released_at = now(), released_by = $2"
            " WHERE hold_id = $1 AND released_at IS NULL RETURNING true",
            hold_id,
            released_by,
        )
        if released:
            await append_locked(
                conn,
                AuditEvent(
                    idempotency_key=f"legal-hold:{hold_id}:released",
                    event_type="legal_hold_released",
                    actor=released_by,
                    payload={"hold_id": hold_id},
                ),
            )
    return bool(released)


async def plan_prune(pool: asyncpg.Pool, before: datetime) -> PrunePlan:
    """The newest checkpoint whose rows are all older than `before`."""
    previous = await pool.fetchval("SELECT coalesce(max(upto_seq), 0) FROM audit_tombstones")
    # One pass: the first row still young bounds the prefix (clocks of several workers may
    # disagree slightly, so a younger row anywhere stops the prefix before it).
    first_young = await pool.fetchval(
        "SELECT min(seq) FROM audit_log WHERE seq > $1 AND recorded_at >= $2", previous, before
    )
    upto = await pool.fetchval(
        "SELECT coalesce(max(seq), 0) FROM audit_checkpoints WHERE seq > $1 AND seq < $2",
        previous,
        first_young if first_young is not None else 2**62,
    )
    rows = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE seq > $1 AND seq <= $2", previous, upto
    )
    return PrunePlan(upto, rows, previous)


class Pruner:
    def __init__(self, audit: AuditLog, keys: LedgerKeys, sink: DirectorySink) -> None:
        self.audit = audit
        self.keys = keys
        self.sink = sink

    async def prune(self, before: datetime, actor: str) -> PrunePlan:
        """Remove the expired prefix; returns what went (upto_seq 0: nothing expired)."""
        if holds := await active_holds(self.audit.pool):
            raise PruneRefused(
                f"legal hold {holds[0].hold_id} ({holds[0].reason!r}) is active: "
                "nothing is pruned while any hold is"
            )
        plan = await plan_prune(self.audit.pool, before)
        if plan.upto_seq == 0:
            return plan
        async with self.audit.pool.acquire() as conn, conn.transaction():
            await lock_sink(conn)  # before the chain lock, never after: no lock cycle
            await lock_chain(conn)
            expected = await conn.fetchval(
                "SELECT hash FROM audit_checkpoints WHERE seq = $1", plan.upto_seq
            )
            previous_hash = await conn.fetchval(
                "SELECT hash FROM audit_tombstones WHERE upto_seq = $1", plan.previous_tombstone
            )
            verifier = ChainVerifier(plan.previous_tombstone + 1, previous_hash or "0" * 64)
            async for row in self.audit.rows(plan.previous_tombstone + 1, plan.upto_seq):
                if not verifier.feed(row):
                    break
            report = verifier.report()
            if report.first_break is not None or report.head_hash != expected:
                raise PruneRefused(
                    f"the rows to prune do not verify "
                    f"({report.first_break or 'checkpoint mismatch'}): "
                    "run `proctor audit verify --full`"
                )
            now = await conn.fetchval("SELECT now()")
            signed = sign(
                self.keys,
                CheckpointBody(
                    kind="tombstone",
                    seq=plan.upto_seq,
                    hash=report.head_hash,
                    previous_seq=plan.previous_tombstone,
                    previous_hash=previous_hash or "0" * 64,
                    rows_removed=plan.rows,
                    signed_at=now.isoformat(),
                    key_id=self.keys.key_id,
                    previous_line=self.sink.previous_line(),
                ),
            )
            await conn.execute(
                "INSERT INTO audit_tombstones (upto_seq, hash, key_id, body, signature)"
                " VALUES ($1, $2, $3, $4, $5)",
                plan.upto_seq,
                report.head_hash,
                self.keys.key_id,
                signed.body,
                signed.signature,
            )
            removed = await conn.fetchval("SELECT proctor_prune_audit($1)", plan.upto_seq)
            await append_locked(
                conn,
                AuditEvent(
                    idempotency_key=f"audit-pruned:{plan.upto_seq}",
                    event_type="audit_pruned",
                    actor=actor,
                    payload={
                        "upto_seq": plan.upto_seq,
                        "rows_removed": removed,
                        "before": before.isoformat(),
                    },
                ),
            )
            self.sink.write(signed)
        return plan
