"""The audit chain on real Postgres: serialised appends, idempotency, append-only, tampering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from proctor.audit.store import AuditLog, IdempotencyConflict
from proctor.db import connect_pool
from proctor.models import AuditEvent
from tests.conftest import DatabaseFactory


@pytest.fixture
async def audit(make_database: DatabaseFactory) -> AsyncIterator[AuditLog]:
    pool = await connect_pool(await make_database(), max_size=12)
    try:
        yield AuditLog(pool)
    finally:
        await pool.close()


def event(key: str, **payload: object) -> AuditEvent:
    return AuditEvent(idempotency_key=key, event_type="test", workflow_id="wf", agent_id="a",
                      action="x", actor="a", payload=dict(payload))


async def fill(audit: AuditLog, count: int) -> None:
    for i in range(count):
        await audit.append(event(f"k{i}", i=i, note="é ünïcode", amount=599.99))


async def test_concurrent_writers_never_fork_or_gap(audit: AuditLog) -> None:
    async def writer(w: int) -> None:
        for i in range(40):
            await audit.append(event(f"w{w}-{i}", w=w, i=i))

    await asyncio.gather(*(writer(w) for w in range(8)))

    seqs = [r["seq"] for r in await audit.pool.fetch("SELECT seq FROM audit_log ORDER BY seq")]
    assert seqs == list(range(1, 321))
    report = await audit.verify()
    assert report.intact and report.rows_checked == 320


async def test_same_key_returns_first_row_and_different_payload_is_an_error(
    audit: AuditLog,
) -> None:
    first = await audit.append(event("k", a=1))
    racing = await asyncio.gather(*(audit.append(event("k", a=1)) for _ in range(5)))
    assert all(r == first for r in racing)
    with pytest.raises(IdempotencyConflict, match="already used"):
        await audit.append(event("k", a=2))
    assert await audit.pool.fetchval("SELECT count(*) FROM audit_log") == 1


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'mallory'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
])
async def test_table_is_append_only(audit: AuditLog, statement: str) -> None:
    await fill(audit, 2)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await audit.pool.execute(statement)


async def tamper(audit: AuditLog, sql: str) -> None:
    """As a superuser with triggers disabled: what a rogue administrator could do."""
    async with audit.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql)


@pytest.mark.parametrize("sql, bad_seq, words", [
    ("UPDATE audit_log SET payload = replace(payload, '599.99', '5999.99') WHERE seq = 7",
     7, "content edited"),
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3, "content edited"),
    ("DELETE FROM audit_log WHERE seq = 5", 5, "missing"),
    ("UPDATE audit_log SET seq = 1000 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 6;"
     " UPDATE audit_log SET seq = 6 WHERE seq = 1000", 4, "prev_hash"),
    ("UPDATE audit_log SET payload = '{\"i\": 2}' WHERE seq = 3", 3, "canonical"),
])
async def test_verify_names_the_first_bad_seq(audit: AuditLog, sql: str, bad_seq: int,
                                              words: str) -> None:
    await fill(audit, 10)
    assert (await audit.verify()).intact

    await tamper(audit, sql)

    report = await audit.verify()
    assert report.first_break is not None
    assert report.first_break.seq == bad_seq
    assert words in report.first_break.problem
