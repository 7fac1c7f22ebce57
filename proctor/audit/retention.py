"""Retention: prune the expired prefix of the chain at a checkpoint, leaving a signed tombstone.

The chain is one sequence, so only a prefix can go, and only up to a signed checkpoint every
row of which is older than the retention period. The tombstone (signed, in the database and in
the external sink, linked to the sink line before it like a checkpoint) records the last pruned
row's hash, so what remains verifies from it. Active legal holds block pruning, in Postgres
itself.
"""

from __future__ import annotations

from datetime import datetime

from proctor.audit.chain import ChainVerifier
from proctor.audit.checkpoints import CheckpointBody, DirectorySink, sign
from proctor.audit.keys import LedgerKeys
from proctor.errors import IntegrityError
from proctor.models import AuditEvent
from proctor.stores.audit_checkpoints import (
    checkpoint_hash,
    insert_signed_point,
    lock_sink,
    tombstone_hash,
)
from proctor.stores.audit_log import AuditLog, append_locked, lock_chain
from proctor.stores.audit_retention import (
    PrunePlan,
    active_holds,
    insert_hold,
    mark_released,
    plan_prune,
    remove_prefix,
)
from proctor.stores.connection import database_now

__all__ = ["PrunePlan", "PruneRefused", "Pruner", "place_hold", "release_hold"]


class PruneRefused(IntegrityError):
    """A legal hold is active, or the rows to prune do not verify."""


async def place_hold(audit: AuditLog, reason: str, placed_by: str) -> int:
    """A legal hold, and its audit row in the same transaction."""
    async with audit.pool.acquire() as conn, conn.transaction():
        hold_id = await insert_hold(conn, reason, placed_by)
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
    """Release an active hold, with its audit row; False when there was none to release."""
    async with audit.pool.acquire() as conn, conn.transaction():
        released = await mark_released(conn, hold_id, released_by)
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
    return released


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
            expected = await checkpoint_hash(conn, plan.upto_seq)
            previous_hash = await tombstone_hash(conn, plan.previous_tombstone)
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
            now = await database_now(conn)
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
            await insert_signed_point(conn, signed)
            removed = await remove_prefix(conn, plan.upto_seq)
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
