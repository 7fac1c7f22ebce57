"""The checkpointer: cadence, refusal to sign a broken chain, sink and database in step."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from proctor.audit.checkpoints import ChainBrokenError, Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog


async def append(audit: AuditLog, *keys: str) -> None:
    await audit.append_many(
        [AuditEvent(idempotency_key=k, event_type="t", payload={"k": k}) for k in keys]
    )


async def signed_seqs(audit: AuditLog) -> list[int]:
    return [
        r["seq"] for r in await audit.pool.fetch("SELECT seq FROM audit_checkpoints ORDER BY seq")
    ]


async def signing(signer: Checkpointer) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(signer.run(stop, poll_seconds=0.02))


async def test_a_burst_is_signed_at_the_row_cadence_only(audit: AuditLog, tmp_path: Path) -> None:
    """Rows arriving a few at a time while the checkpointer polls: one checkpoint per
    `every_rows`, never one per poll chasing the head."""
    signer = Checkpointer(
        audit,
        LedgerKeys.generate(),
        DirectorySink(tmp_path / "sink"),
        every_rows=20,
        every_seconds=60,
    )
    stop, running = await signing(signer)
    try:
        for i in range(0, 70, 2):
            await append(audit, f"b{i}", f"b{i + 1}")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await running
    assert await signed_seqs(audit) == [20, 40, 60]


async def test_stopping_signs_what_fell_due_since_the_last_pass(
    audit: AuditLog, tmp_path: Path
) -> None:
    """A worker stopped between two polls still signs the head that fell due: the last pass
    runs when the stop comes, not never."""
    signer = Checkpointer(
        audit,
        LedgerKeys.generate(),
        DirectorySink(tmp_path / "sink"),
        every_rows=20,
        every_seconds=60,
    )
    await append(audit, *(f"s{i}" for i in range(25)))
    stop = asyncio.Event()
    stop.set()
    await signer.run(stop, poll_seconds=60)
    assert await signed_seqs(audit) == [20]


async def test_a_quiet_tail_is_signed_once_its_oldest_row_is_every_seconds_old(
    audit: AuditLog,
    tmp_path: Path,
) -> None:
    sink = DirectorySink(tmp_path / "sink")
    signer = Checkpointer(audit, LedgerKeys.generate(), sink, every_rows=3, every_seconds=1.0)
    stop, running = await signing(signer)
    try:
        await append(audit, *(f"a{i}" for i in range(7)))
        await asyncio.sleep(0.4)
        assert await signed_seqs(audit) == [3, 6]  # full chunks at once, row 7 waits
        await append(audit, "b1")
        await asyncio.sleep(0.3)
        assert await signed_seqs(audit) == [3, 6]  # still younger than every_seconds
        for _ in range(100):
            if len(await signed_seqs(audit)) > 2:
                break
            await asyncio.sleep(0.05)
        assert await signed_seqs(audit) == [3, 6, 8]  # rows 7 and 8 in one checkpoint
        waited = await audit.pool.fetchval(
            "SELECT extract(epoch FROM c.created_at - r.recorded_at) FROM audit_checkpoints c,"
            " audit_log r WHERE c.seq = 8 AND r.seq = 7"
        )
        assert float(waited) >= 1.0
    finally:
        stop.set()
        await running
    assert [c.parsed().seq for c in sink.read()] == [3, 6, 8]


async def test_the_sink_holds_no_keys(audit: AuditLog, tmp_path: Path) -> None:
    """A key next to the data it vouches for is worth nothing: none is published there."""
    await append(audit, "a")
    await Checkpointer(audit, LedgerKeys.generate(), DirectorySink(tmp_path / "sink")).catch_up()
    assert [p.name for p in (tmp_path / "sink").iterdir()] == ["checkpoints.jsonl"]


async def test_keys_are_private_files_and_never_in_the_database(
    audit: AuditLog, tmp_path: Path
) -> None:
    keys = LedgerKeys.load_or_create(tmp_path / "keys")
    for path in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert LedgerKeys.load_or_create(tmp_path / "keys").key_id == keys.key_id
    await append(audit, "x")
    await Checkpointer(audit, keys, DirectorySink(tmp_path / "sink")).checkpoint()
    dump = "".join(str(dict(r)) for r in await audit.pool.fetch("SELECT * FROM audit_checkpoints"))
    assert keys.redaction_hmac.hex() not in dump and "PRIVATE" not in dump


async def test_a_broken_chain_is_never_signed(audit: AuditLog, tmp_path: Path) -> None:
    await append(audit, "a", "b", "c")
    async with audit.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    signer = Checkpointer(
        audit, LedgerKeys.load_or_create(tmp_path / "keys"), DirectorySink(tmp_path / "sink")
    )
    with pytest.raises(ChainBrokenError, match="seq 2"):
        await signer.checkpoint()
    assert await signed_seqs(audit) == []


async def test_a_failed_sink_write_leaves_no_checkpoint_row(
    audit: AuditLog, tmp_path: Path
) -> None:
    await append(audit, "a")
    blocked = tmp_path / "sink"
    blocked.write_text("a file where the sink directory should be")
    signer = Checkpointer(
        audit, LedgerKeys.load_or_create(tmp_path / "keys"), DirectorySink(blocked)
    )
    with pytest.raises(OSError):
        await signer.checkpoint()
    assert await signed_seqs(audit) == []
