"""Retention in Postgres: legal holds, what a prune would remove, and removing it.

Only a prefix of the chain can go, up to a checkpoint; the removal itself is a database
function that the admin role alone may run, and that refuses while a hold is active or no
tombstone covers the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from proctor.stores.connection import Connection, Queryable


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


async def active_holds(db: Queryable) -> list[Hold]:
    records = await db.fetch(
        "SELECT hold_id, reason, placed_by, placed_at FROM audit_legal_holds"
        " WHERE released_at IS NULL ORDER BY hold_id"
    )
    return [Hold(**dict(r.items())) for r in records]


async def insert_hold(conn: Connection, reason: str, placed_by: str) -> int:
    """A new active hold; its id."""
    hold_id: int = await conn.fetchval(
        "INSERT INTO audit_legal_holds (reason, placed_by) VALUES ($1, $2) RETURNING hold_id",
        reason,
        placed_by,
    )
    return hold_id


async def mark_released(conn: Connection, hold_id: int, released_by: str) -> bool:
    """Release an active hold; False when there is no active hold of that id."""
    released = await conn.fetchval(
        "UPDATE audit_legal_holds SET released_at = now(), released_by = $2"
        " WHERE hold_id = $1 AND released_at IS NULL RETURNING true",
        hold_id,
        released_by,
    )
    return bool(released)


async def plan_prune(db: Queryable, before: datetime) -> PrunePlan:
    """The newest checkpoint whose rows are all older than `before`."""
    previous = await db.fetchval("SELECT coalesce(max(upto_seq), 0) FROM audit_tombstones")
    # One pass: the first row still young bounds the prefix (clocks of several workers may
    # disagree slightly, so a younger row anywhere stops the prefix before it).
    first_young = await db.fetchval(
        "SELECT min(seq) FROM audit_log WHERE seq > $1 AND recorded_at >= $2", previous, before
    )
    upto = await db.fetchval(
        "SELECT coalesce(max(seq), 0) FROM audit_checkpoints WHERE seq > $1 AND seq < $2",
        previous,
        first_young if first_young is not None else 2**62,
    )
    rows = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE seq > $1 AND seq <= $2", previous, upto
    )
    return PrunePlan(upto, rows, previous)


async def remove_prefix(conn: Connection, upto_seq: int) -> int:
    """Delete rows up to `upto_seq` (a tombstone there must exist already); how many went."""
    removed: int = await conn.fetchval("SELECT proctor_prune_audit($1)", upto_seq)
    return removed
