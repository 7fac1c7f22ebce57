"""Signed points in Postgres: checkpoints and prune tombstones, and the locks of their writers.

A checkpoint row copies what was signed (body and signature); a tombstone row does the same for
a pruned prefix. Neither is trusted for itself: verification checks each against pinned keys
and against the sink outside the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from proctor.audit.chain import GENESIS_HASH
from proctor.audit.signed import SignedCheckpoint
from proctor.stores.connection import Connection, Queryable

CHECKPOINT_LOCK_ID = 0x61756469745F63  # "audit_c": one writer of signed points at a time


async def lock_sink(conn: Connection) -> None:
    """Serialise sink writers (checkpointer, pruner) until the transaction ends: each line
    links to the one before it, so two writers reading the same last line would fork it."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CHECKPOINT_LOCK_ID)


@asynccontextmanager
async def signing_turn(conn: Connection) -> AsyncIterator[bool]:
    """Whether this connection holds the signer's lock for the block (False: another worker
    is signing right now, so this one should not wait for it)."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", CHECKPOINT_LOCK_ID):
        yield False
        return
    try:
        yield True
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", CHECKPOINT_LOCK_ID)


async def latest_anchor(db: Queryable) -> tuple[int, str, datetime | None]:
    """The newest signed point (checkpoint or tombstone): seq, hash, when it was made."""
    record = await db.fetchrow(
        "SELECT seq, hash, created_at FROM ("
        " SELECT seq, hash, created_at FROM audit_checkpoints"
        " UNION ALL SELECT upto_seq, hash, created_at FROM audit_tombstones"
        ") anchors ORDER BY seq DESC LIMIT 1"
    )
    if record is None:
        return 0, GENESIS_HASH, None
    return record["seq"], record["hash"], record["created_at"]


async def checkpoint_hash(db: Queryable, seq: int) -> str | None:
    """The hash the checkpoint at `seq` signed (None: no checkpoint there)."""
    digest: str | None = await db.fetchval("SELECT hash FROM audit_checkpoints WHERE seq = $1", seq)
    return digest


async def tombstone_hash(db: Queryable, upto_seq: int) -> str | None:
    """The last pruned row's hash the tombstone at `upto_seq` signed (None: no such one)."""
    digest: str | None = await db.fetchval(
        "SELECT hash FROM audit_tombstones WHERE upto_seq = $1", upto_seq
    )
    return digest


_INSERT = {
    "checkpoint": "INSERT INTO audit_checkpoints (seq, hash, key_id, body, signature)"
    " VALUES ($1, $2, $3, $4, $5)",
    "tombstone": "INSERT INTO audit_tombstones (upto_seq, hash, key_id, body, signature)"
    " VALUES ($1, $2, $3, $4, $5)",
}


async def insert_signed_point(conn: Connection, signed: SignedCheckpoint) -> None:
    """Keep a signed point in the table of its kind, under the seq and hash it signed."""
    body = signed.parsed()
    await conn.execute(
        _INSERT[body.kind], body.seq, body.hash, body.key_id, signed.body, signed.signature
    )


async def database_checkpoints(db: Queryable) -> list[tuple[str, SignedCheckpoint]]:
    """(table, signed) for every checkpoint and tombstone row, in seq order."""
    records = await db.fetch(
        "SELECT 'audit_checkpoints' AS source, seq, body, signature FROM audit_checkpoints"
        " UNION ALL SELECT 'audit_tombstones', upto_seq, body, signature FROM audit_tombstones"
        " ORDER BY seq, source"
    )
    return [
        (r["source"], SignedCheckpoint(body=r["body"], signature=r["signature"])) for r in records
    ]


async def has_signed_points(db: Queryable) -> bool:
    """Whether the database holds any checkpoint or tombstone (whoever signed it)."""
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM audit_checkpoints)"
            " OR EXISTS (SELECT 1 FROM audit_tombstones)"
        )
    )
