"""What an attacker does to the ledger, as plain functions the tests share.

The attacker is a database superuser (triggers disabled, any row rewritten) and anyone who can
write to the checkpoint sink; they never hold the worker's key directory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncpg

from proctor.audit.chain import GENESIS_HASH, ChainRow, sealed
from proctor.audit.checkpoints import Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys, key_id, public_pem
from proctor.models import AuditEvent
from proctor.stores.audit_log import COLUMN_NAMES, AuditLog


async def fill(audit: AuditLog, prefix: str, count: int) -> None:
    await audit.append_many(
        [
            AuditEvent(
                idempotency_key=f"{prefix}{i}",
                event_type="decided",
                actor="proctor",
                action="refund",
                payload={"i": i, "amount": 12.5},
            )
            for i in range(count)
        ]
    )


async def as_superuser(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    """One statement with the append-only triggers off, as a rogue superuser would."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def rows_from(pool: asyncpg.Pool, seq: int, upto: int | None = None) -> list[ChainRow]:
    return [row async for row in AuditLog(pool).rows(seq, upto)]


async def rewrite(
    pool: asyncpg.Pool, seq: int, rows: list[ChainRow], keep_after: bool = False
) -> None:
    """Put `rows` at `seq`, `seq + 1`, … with every hash recomputed so the links verify.

    `keep_after`: replace only as many rows as given and leave the rest untouched (the
    attacker stops re-hashing before the next checkpoint, so the link after them breaks).
    """
    prev = await pool.fetchval("SELECT hash FROM audit_log WHERE seq = $1", seq - 1)
    prev = prev or GENESIS_HASH
    fresh = []
    for offset, row in enumerate(rows):
        row = sealed(replace(row, seq=seq + offset, prev_hash=prev, recorded_text=None))
        prev = row.hash
        fresh.append(row)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        if keep_after:
            await conn.execute(
                "DELETE FROM audit_log WHERE seq >= $1 AND seq < $2", seq, seq + len(rows)
            )
        else:
            await conn.execute("DELETE FROM audit_log WHERE seq >= $1", seq)
        await conn.copy_records_to_table(
            "audit_log",
            columns=COLUMN_NAMES,
            records=[tuple(getattr(r, c) for c in COLUMN_NAMES) for r in fresh],
        )


def drop_key_into_sink(sink_dir: Path, forger: LedgerKeys) -> Path:
    """Leave the forger's public key where the old verifier looked for keys."""
    keys = sink_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    public = forger.signing.public_key()
    target = keys / f"{key_id(public)}.pem"
    target.write_text(public_pem(public))
    return target


async def resign_everything(
    pool: asyncpg.Pool, sink_dir: Path, forger: LedgerKeys, every_rows: int
) -> None:
    """Replace every signed checkpoint, in Postgres and in the sink, with the forger's own,
    made by Proctor's own checkpointer over the rows as they now are."""
    await as_superuser(pool, "DELETE FROM audit_checkpoints")
    (sink_dir / "checkpoints.jsonl").unlink(missing_ok=True)
    await Checkpointer(
        AuditLog(pool), forger, DirectorySink(sink_dir), every_rows=every_rows
    ).catch_up()
    drop_key_into_sink(sink_dir, forger)


def sink_lines(sink_dir: Path) -> list[bytes]:
    return (sink_dir / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)


def write_sink_lines(sink_dir: Path, lines: list[bytes]) -> None:
    (sink_dir / "checkpoints.jsonl").write_bytes(b"".join(lines))
