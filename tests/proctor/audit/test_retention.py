"""Pruning at checkpoint boundaries with signed tombstones; legal holds block it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from proctor.audit.checkpoints import Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys
from proctor.audit.retention import Pruner, PruneRefused, place_hold, release_hold
from proctor.audit.verify import verify_ledger
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog


async def fill(audit: AuditLog, prefix: str, count: int) -> None:
    await audit.append_many(
        [
            AuditEvent(idempotency_key=f"{prefix}{i}", event_type="t", payload={"i": i})
            for i in range(count)
        ]
    )


async def test_prune_removes_the_expired_prefix_and_what_remains_verifies(
    audit: AuditLog,
    tmp_path: Path,
) -> None:
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    signer = Checkpointer(audit, keys, sink, every_rows=10)
    await fill(audit, "old", 25)
    await signer.catch_up()  # checkpoints at 10, 20, 25
    await asyncio.sleep(0.01)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await fill(audit, "new", 5)  # younger than the cutoff: they stay
    pruner = Pruner(audit, keys, sink)

    hold = await place_hold(audit, "litigation 2026-17", "counsel@example.com")
    with pytest.raises(PruneRefused, match="legal hold"):
        await pruner.prune(cutoff, "ops@example.com")
    assert await release_hold(audit, hold, "counsel@example.com")

    plan = await pruner.prune(cutoff, "ops@example.com")
    assert plan.upto_seq == 25  # the newest checkpoint all of whose rows expired
    remaining = [r.seq async for r in audit.rows()]
    assert remaining[0] == 26 and remaining[-1] == 33  # 5 new + hold placed/released + pruned
    report = await verify_ledger(audit, keys=keys.pinned, external=sink.lines())
    assert report.intact, report.findings
    assert report.start_seq == 26 and report.rows_checked == 8

    await signer.catch_up()
    assert (await verify_ledger(audit, keys=keys.pinned, external=sink.lines())).intact
    assert (await pruner.prune(cutoff, "ops@example.com")).upto_seq == 0  # nothing more


async def test_nothing_younger_than_retention_goes(audit: AuditLog, tmp_path: Path) -> None:
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    await fill(audit, "a", 5)
    await Checkpointer(audit, keys, sink).catch_up()
    plan = await Pruner(audit, keys, sink).prune(datetime.now(UTC) - timedelta(days=1), "ops")
    assert plan.upto_seq == 0 and await audit.row_at(1) is not None


async def test_a_forged_tombstone_is_reported(audit: AuditLog, tmp_path: Path) -> None:
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    await fill(audit, "a", 6)
    await Checkpointer(audit, keys, sink, every_rows=3).catch_up()
    forger = Pruner(audit, LedgerKeys.generate(), DirectorySink(tmp_path / "elsewhere"))
    await forger.prune(datetime.now(UTC) + timedelta(seconds=1), "mallory")
    report = await verify_ledger(audit, keys=keys.pinned, external=sink.lines())
    assert {f.kind for f in report.findings} >= {"checkpoint_forged"}


async def test_only_the_admin_role_may_prune(audit: AuditLog) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no tombstone"):
        await audit.pool.execute("SELECT proctor_prune_audit(3)")


async def test_the_tombstone_line_is_chained_and_its_removal_seen(
    audit: AuditLog, tmp_path: Path
) -> None:
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    await fill(audit, "a", 6)
    await Checkpointer(audit, keys, sink, every_rows=3).catch_up()
    await Pruner(audit, keys, sink).prune(datetime.now(UTC) + timedelta(seconds=1), "ops")
    await fill(audit, "b", 2)
    await Checkpointer(audit, keys, sink, every_rows=3).catch_up()
    assert (await verify_ledger(audit, keys=keys.pinned, external=sink.lines())).intact

    lines = sink.path.read_bytes().splitlines(keepends=True)
    assert b"tombstone" in lines[2]
    sink.path.write_bytes(b"".join(lines[:2] + lines[3:]))
    report = await verify_ledger(audit, keys=keys.pinned, external=sink.lines())
    assert {f.kind for f in report.findings} == {"sink_missing", "sink_chain_broken"}
