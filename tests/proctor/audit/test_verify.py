"""Tampering as a rogue superuser would, on a 100,000-row ledger with signed checkpoints.

Each case clones a prepared database, tampers with direct SQL (triggers disabled) and, for the
careful cases, recomputes every hash after the change so the links verify again; only the
signed checkpoints outside the database can then tell, and they must say where and what.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import pytest

from proctor.audit.chain import GENESIS_HASH, ChainRow, sealed
from proctor.audit.checkpoints import CheckpointBody, Checkpointer, DirectorySink, sign
from proctor.audit.keys import LedgerKeys
from proctor.audit.verify import Anchor, LedgerReport, verify_ledger
from proctor.db import connect_pool, with_database
from proctor.models import AuditEvent
from proctor.stores.audit_log import COLUMN_NAMES, AuditLog
from tests.helpers.database import DatabaseFactory

ROWS = 100_000
EVERY = 1000


@dataclass(frozen=True)
class Prepared:
    database: str
    sink: Path
    keys: Path


@pytest.fixture(scope="module")
async def prepared(
    make_database: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Prepared:
    dsn = await make_database()
    root = tmp_path_factory.mktemp("ledger")
    pool = await connect_pool(dsn, max_size=2)
    try:
        audit = AuditLog(pool)
        for start in range(0, ROWS, 5000):
            await audit.append_many(
                [
                    AuditEvent(
                        idempotency_key=f"k{i}",
                        event_type="decided",
                        workflow_id=f"wf{i}",
                        agent_id=f"agent-{i % 7}",
                        action="refund",
                        actor="proctor",
                        payload={"i": i, "amount": 12.5, "note": "é"},
                    )
                    for i in range(start, start + 5000)
                ]
            )
        checkpointer = Checkpointer(
            audit,
            LedgerKeys.load_or_create(root / "keys"),
            DirectorySink(root / "sink"),
            every_rows=EVERY,
        )
        assert len(await checkpointer.catch_up()) == ROWS // EVERY
    finally:
        await pool.close()
    return Prepared(dsn.partition("?")[0].rpartition("/")[2], root / "sink", root / "keys")


@dataclass
class Ledger:
    audit: AuditLog
    sink: DirectorySink
    keys: LedgerKeys

    async def verify(self, since: Anchor | None = None) -> LedgerReport:
        return await verify_ledger(
            self.audit, keys=self.keys.pinned, external=self.sink.lines(), since=since
        )


@pytest.fixture
async def ledger(
    prepared: Prepared, postgres_server_dsn: str, tmp_path: Path
) -> AsyncIterator[Ledger]:
    name = f"proctor_tamper_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{prepared.database}"')
        shutil.copytree(prepared.sink, tmp_path / "sink")
        pool = await connect_pool(with_database(postgres_server_dsn, name), max_size=4)
        try:
            yield Ledger(
                AuditLog(pool),
                DirectorySink(tmp_path / "sink"),
                LedgerKeys.load_or_create(prepared.keys),
            )
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def as_superuser(ledger: Ledger, sql: str, *args: object) -> None:
    async with ledger.audit.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def rewrite_from(ledger: Ledger, seq: int, rows: list[ChainRow]) -> None:
    """Replace every row from `seq` on with `rows`, renumbered and re-hashed consistently."""
    pool = ledger.audit.pool
    prev = await pool.fetchval("SELECT hash FROM audit_log WHERE seq = $1", seq - 1)
    prev = prev or GENESIS_HASH
    fresh = []
    for offset, row in enumerate(rows):
        row = sealed(replace(row, seq=seq + offset, prev_hash=prev))
        prev = row.hash
        fresh.append(row)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM audit_log WHERE seq >= $1", seq)
        await conn.copy_records_to_table(
            "audit_log",
            columns=COLUMN_NAMES,
            records=[tuple(getattr(r, c) for c in COLUMN_NAMES) for r in fresh],
        )


async def rows_from(ledger: Ledger, seq: int) -> list[ChainRow]:
    return [row async for row in ledger.audit.rows(seq)]


async def test_untouched_ledger_verifies_every_link_and_checkpoint(ledger: Ledger) -> None:
    report = await ledger.verify()
    assert report.intact, report.findings
    assert report.rows_checked == ROWS
    assert report.checkpoints_checked == ROWS // EVERY
    assert report.external_checkpoints == ROWS // EVERY
    assert report.verified_anchor is not None and report.verified_anchor.seq == ROWS


def only(report: LedgerReport) -> tuple[int | None, str]:
    first = report.first_finding
    assert first is not None, "tampering went unnoticed"
    return first.seq, first.kind


async def test_one_byte_edited_in_row_500(ledger: Ledger) -> None:
    await as_superuser(
        ledger, "UPDATE audit_log SET payload = replace(payload, '12.5', '92.5') WHERE seq = 500"
    )
    assert only(await ledger.verify()) == (500, "content_edited")


async def test_a_deleted_row(ledger: Ledger) -> None:
    await as_superuser(ledger, "DELETE FROM audit_log WHERE seq = 700")
    assert only(await ledger.verify()) == (700, "row_deleted")


async def test_two_swapped_rows(ledger: Ledger) -> None:
    await as_superuser(
        ledger,
        "UPDATE audit_log SET seq = seq + 1000000 WHERE seq IN (900, 901);"
        " UPDATE audit_log SET seq = 1001801 - (seq - 1000000) - 1000000"
        " WHERE seq > 1000000",
    )
    assert only(await ledger.verify()) == (900, "rows_swapped")


async def test_a_forged_row_inserted_with_recomputed_hashes(ledger: Ledger) -> None:
    tail = await rows_from(ledger, 95_500)
    forged = replace(
        tail[0], idempotency_key="forged", actor="mallory", payload='{"approved":true}'
    )
    await rewrite_from(ledger, 95_500, [forged, *tail])
    report = await ledger.verify()
    assert report.rows_checked == ROWS + 1  # every link verifies: only checkpoints can tell
    assert only(report) == (95_500, "row_inserted")


async def test_a_row_deleted_with_recomputed_hashes(ledger: Ledger) -> None:
    tail = await rows_from(ledger, 96_321)
    await rewrite_from(ledger, 96_321, tail[1:])
    assert only(await ledger.verify()) == (96_321, "row_deleted")


async def test_content_edited_with_recomputed_hashes(ledger: Ledger) -> None:
    tail = await rows_from(ledger, 97_000)
    await rewrite_from(ledger, 97_000, [replace(tail[0], actor="mallory"), *tail[1:]])
    assert only(await ledger.verify()) == (97_000, "content_edited")


async def test_rows_swapped_with_recomputed_hashes(ledger: Ledger) -> None:
    tail = await rows_from(ledger, 98_777)
    await rewrite_from(ledger, 98_777, [tail[1], tail[0], *tail[2:]])
    assert only(await ledger.verify()) == (98_777, "rows_swapped")


@pytest.mark.parametrize("keep", [99_000, 99_500])
async def test_the_tail_truncated_and_recomputed(ledger: Ledger, keep: int) -> None:
    await as_superuser(ledger, "DELETE FROM audit_log WHERE seq > $1", keep)
    assert only(await ledger.verify()) == (keep + 1, "tail_truncated")


async def test_the_whole_table_rewritten_consistently_with_forged_checkpoints(
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    everything = await rows_from(ledger, 1)
    await rewrite_from(ledger, 1, [replace(r, actor="mallory") for r in everything])
    # The forger also replaces the database's checkpoints, signed with a key of their own.
    own = LedgerKeys.load_or_create(tmp_path / "forger")
    head = await ledger.audit.head()
    await as_superuser(ledger, "DELETE FROM audit_checkpoints")
    body = sign(own, _body(head, own))
    await as_superuser(
        ledger,
        "INSERT INTO audit_checkpoints (seq, hash, key_id, body, "
        "signature) VALUES ($1, $2, $3, $4, $5)",
        head[0],
        head[1],
        own.key_id,
        body.body,
        body.signature,
    )

    report = await ledger.verify()
    kinds = {f.kind for f in report.findings}
    assert only(report) == (1, "table_rewritten")
    assert "checkpoint_forged" in kinds and "checkpoint_missing" in kinds


def _body(head: tuple[int, str], keys: LedgerKeys) -> CheckpointBody:
    return CheckpointBody(
        kind="checkpoint",
        seq=head[0],
        hash=head[1],
        previous_seq=0,
        previous_hash=GENESIS_HASH,
        signed_at="2026-01-01T00:00:00+00:00",
        key_id=keys.key_id,
    )


async def test_incremental_verification_starts_at_the_last_verified_checkpoint(
    ledger: Ledger,
) -> None:
    anchor = (await ledger.verify()).verified_anchor
    assert anchor is not None
    await ledger.audit.append(AuditEvent(idempotency_key="later", event_type="t", payload={}))
    report = await ledger.verify(since=anchor)
    assert report.intact and report.mode == "incremental" and report.rows_checked == 1

    # A careful rewrite far below the anchor still shows at the signed points it crosses.
    tail = await rows_from(ledger, 90_010)
    await rewrite_from(ledger, 90_010, [replace(tail[0], actor="mallory"), *tail[1:]])
    assert only(await ledger.verify(since=anchor)) == (90_010, "content_edited")
