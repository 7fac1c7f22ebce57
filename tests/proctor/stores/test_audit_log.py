"""The audit chain on real Postgres: serialised appends, idempotency, append-only, tampering."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from proctor.audit.chain import row_hash
from proctor.audit.findings import FindingKind
from proctor.canonical import canonical_text
from proctor.db import connect_pool, ensure_login_role, with_user
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog, IdempotencyConflict


def event(key: str, **payload: object) -> AuditEvent:
    return AuditEvent(
        idempotency_key=key,
        event_type="test",
        workflow_id="wf",
        agent_id="a",
        action="x",
        actor="a",
        payload=dict(payload),
    )


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


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
async def test_table_is_append_only(audit: AuditLog, statement: str) -> None:
    await fill(audit, 2)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await audit.pool.execute(statement)


async def tamper(audit: AuditLog, sql: str) -> None:
    """As a superuser with triggers disabled: what a rogue administrator could do."""
    async with audit.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql)


@pytest.mark.parametrize(
    "sql, bad_seq, words, kind",
    [
        (
            "UPDATE audit_log SET payload = replace(payload, '599.99', '5999.99') WHERE seq = 7",
            7,
            "content edited",
            FindingKind.CONTENT_EDITED,
        ),
        (
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
            3,
            "content edited",
            FindingKind.CONTENT_EDITED,
        ),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "missing", FindingKind.ROW_DELETED),
        (
            "UPDATE audit_log SET seq = 1000 WHERE seq = 4;"
            " UPDATE audit_log SET seq = 4 WHERE seq = 6;"
            " UPDATE audit_log SET seq = 6 WHERE seq = 1000",
            4,
            "swapped",
            FindingKind.ROWS_SWAPPED,
        ),
        (
            "UPDATE audit_log SET payload = '{\"i\": 2}' WHERE seq = 3",
            3,
            "content edited",
            FindingKind.CONTENT_EDITED,
        ),
    ],
)
async def test_verify_names_the_first_bad_seq(
    audit: AuditLog, sql: str, bad_seq: int, words: str, kind: FindingKind
) -> None:
    await fill(audit, 10)
    assert (await audit.verify()).intact

    await tamper(audit, sql)

    report = await audit.verify()
    assert report.first_break is not None
    assert report.first_break.seq == bad_seq
    assert report.first_break.kind == kind
    assert words in report.first_break.problem


async def test_32_writers_in_two_processes_never_fork_or_gap(audit: AuditLog, dsn: str) -> None:
    """Two AuditLog instances on two pools stand for two worker processes."""
    other = AuditLog(await connect_pool(dsn, max_size=8))
    try:

        async def writer(log: AuditLog, w: int) -> None:
            for i in range(1000):
                await log.append(event(f"w{w}-{i}", w=w, i=i))

        await asyncio.gather(*(writer(audit if w % 2 else other, w) for w in range(32)))
    finally:
        await other.pool.close()

    seqs = [r["seq"] for r in await audit.pool.fetch("SELECT seq FROM audit_log ORDER BY seq")]
    assert seqs == list(range(1, 32_001))
    report = await audit.verify()
    assert report.intact and report.rows_checked == 32_000


async def test_same_key_from_two_processes_at_once_writes_one_row(
    audit: AuditLog, dsn: str
) -> None:
    other = AuditLog(await connect_pool(dsn, max_size=4))
    try:
        receipts = await asyncio.gather(
            *(log.append(event(f"race-{n}", n=n)) for n in range(50) for log in (audit, other))
        )
    finally:
        await other.pool.close()
    assert all(receipts[i] == receipts[i + 1] for i in range(0, 100, 2))
    assert await audit.pool.fetchval("SELECT count(*) FROM audit_log") == 50


async def test_a_conflict_in_a_batch_refuses_only_that_event(audit: AuditLog) -> None:
    await audit.append(event("taken", a=1))
    results = await asyncio.gather(
        audit.append(event("fresh-1", a=1)),
        audit.append(event("taken", a=2)),
        audit.append(event("fresh-2", a=1)),
        return_exceptions=True,
    )
    assert isinstance(results[1], IdempotencyConflict)
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    assert (await audit.verify()).rows_checked == 3


async def test_a_failed_batch_fails_every_waiter_and_writes_nothing(audit: AuditLog) -> None:
    await audit.pool.execute("ALTER TABLE audit_log ADD CONSTRAINT no_x CHECK (actor <> 'x')")
    bad = AuditEvent(idempotency_key="bad", event_type="t", actor="x", payload={})
    results = await asyncio.gather(
        audit.append(event("good", a=1)), audit.append(bad), return_exceptions=True
    )
    assert all(isinstance(r, asyncpg.CheckViolationError) for r in results)
    assert await audit.pool.fetchval("SELECT count(*) FROM audit_log") == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"z": 1, "a": {"y": 2, "b": [3, {"d": 4, "c": 5}]}},
        {"text": 'é ünïcode 😀 \u2028 \u0000 "quoted" \\ back', "€": "\U0001f600"},
        {"neg_zero": -0.0, "float": 1e21, "small": 5e-324, "pi": 3.141592653589793},
        {"big": 9007199254740991, "negbig": -9007199254740991, "t": True, "n": None},
    ],
)
async def test_canonical_edge_cases_hash_the_same_after_postgres(
    audit: AuditLog,
    payload: dict[str, object],
) -> None:
    receipt = await audit.append(event("edge", **payload))
    (row,) = [r async for r in audit.rows()]
    assert row.hash == receipt.hash == row_hash(row)
    assert json.loads(row.payload) == json.loads(canonical_text(payload))
    assert (await audit.verify()).intact


async def test_the_app_role_cannot_rewrite_even_without_triggers(audit: AuditLog, dsn: str) -> None:
    await fill(audit, 3)
    await ensure_login_role(audit.pool, "proctor_test_worker")
    app = await connect_pool(with_user(dsn, "proctor_test_worker"), max_size=2)
    try:
        as_app = AuditLog(app)
        await as_app.append(event("from-app", ok=True))
        assert (await as_app.verify()).rows_checked == 4
        for statement in (
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "SELECT proctor_prune_audit(1)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await app.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("SET session_replication_role = replica")
    finally:
        await app.close()


async def test_reads_by_position_time_and_workflow(audit: AuditLog) -> None:
    receipts = await audit.append_many(
        [
            AuditEvent(
                idempotency_key="a1", event_type="escalated", workflow_id="wf-a", payload={}
            ),
            AuditEvent(idempotency_key="b1", event_type="decided", workflow_id="wf-b", payload={}),
            AuditEvent(idempotency_key="a2", event_type="vote", workflow_id="wf-a", payload={}),
            AuditEvent(idempotency_key="a3", event_type="outcome", workflow_id="wf-a", payload={}),
        ]
    )

    assert [r.seq for r in await audit.latest(2)] == [3, 4]
    assert [r.seq for r in await audit.latest(10)] == [1, 2, 3, 4]
    found = await audit.rows_at([2, 4, 99])
    assert sorted(found) == [2, 4] and all(row_hash(r) == r.hash for r in found.values())
    assert await audit.hash_at(3) == receipts[2].hash and await audit.hash_at(99) is None
    assert [r.seq for r in await audit.for_workflow("wf-a")] == [1, 3, 4]
    chosen = await audit.for_workflow("wf-a", event_types=("vote", "escalated"))
    assert [r.event_type for r in chosen] == ["escalated", "vote"]
    waited = await audit.seconds_waiting_after(2)
    assert waited is not None and 0 <= waited < 60
    assert await audit.seconds_waiting_after(4) is None
