"""The checkpointer: cadence, refusal to sign a broken chain, sink and database in step."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from proctor.audit.checkpoints import ChainBrokenError, Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys
from proctor.audit.store import AuditLog
from proctor.models import AuditEvent


async def append(audit: AuditLog, *keys: str) -> None:
    await audit.append_many([AuditEvent(idempotency_key=k, event_type="t", payload={"k": k})
                             for k in keys])


async def signed_seqs(audit: AuditLog) -> list[int]:
    return [r["seq"] for r in await audit.pool.fetch(
        "SELECT seq FROM audit_checkpoints ORDER BY seq")]


async def test_signs_every_n_rows_and_after_t_seconds(audit: AuditLog, tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "sink")
    signer = Checkpointer(audit, LedgerKeys.load_or_create(tmp_path / "keys"), sink,
                          every_rows=3, every_seconds=0.6)
    stop = asyncio.Event()
    running = asyncio.create_task(signer.run(stop, poll_seconds=0.05))
    try:
        await append(audit, *(f"a{i}" for i in range(7)))
        await asyncio.sleep(0.3)
        assert await signed_seqs(audit) == [3, 6, 7]  # the first checkpoint is due at once
        await append(audit, "b1")
        await asyncio.sleep(0.2)
        assert await signed_seqs(audit) == [3, 6, 7]  # one new row, too soon
        await asyncio.sleep(0.8)
        assert await signed_seqs(audit) == [3, 6, 7, 8]
    finally:
        stop.set()
        await running
    assert [c.parsed().seq for c in sink.read()] == [3, 6, 7, 8]
    assert len(sink.public_keys()) == 1


async def test_keys_are_private_files_and_never_in_the_database(audit: AuditLog,
                                                               tmp_path: Path) -> None:
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
    signer = Checkpointer(audit, LedgerKeys.load_or_create(tmp_path / "keys"),
                          DirectorySink(tmp_path / "sink"))
    with pytest.raises(ChainBrokenError, match="seq 2"):
        await signer.checkpoint()
    assert await signed_seqs(audit) == []


async def test_a_failed_sink_write_leaves_no_checkpoint_row(audit: AuditLog,
                                                            tmp_path: Path) -> None:
    await append(audit, "a")
    blocked = tmp_path / "sink"
    blocked.write_text("a file where the sink directory should be")
    signer = Checkpointer(audit, LedgerKeys.load_or_create(tmp_path / "keys"),
                          DirectorySink(blocked))
    with pytest.raises(OSError):
        await signer.checkpoint()
    assert await signed_seqs(audit) == []
