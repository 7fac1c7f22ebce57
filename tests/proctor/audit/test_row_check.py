"""A timeline's rows are "verified" only under a checkpoint signed by a pinned key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from proctor.audit.checkpoints import Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys
from proctor.audit.row_check import check_rows
from proctor.stores.audit_log import AuditLog
from tests.helpers.tamper import fill, resign_everything, rewrite, rows_from


async def test_rows_under_a_genuine_checkpoint_verify(audit: AuditLog, tmp_path: Path) -> None:
    keys = LedgerKeys.generate()
    await fill(audit, "k", 5)
    await Checkpointer(audit, keys, DirectorySink(tmp_path / "sink")).catch_up()
    checks = await check_rows(audit, await rows_from(audit.pool, 1), keys.pinned)
    assert all(c.verified and c.signature_ok for c in checks)


async def test_rows_rewritten_under_a_checkpoint_signed_by_another_key_do_not_verify(
    audit: AuditLog,
    tmp_path: Path,
) -> None:
    keys = LedgerKeys.generate()
    await fill(audit, "k", 5)
    await Checkpointer(audit, keys, DirectorySink(tmp_path / "sink")).catch_up()
    rows = await rows_from(audit.pool, 1)
    await rewrite(audit.pool, 1, [replace(r, actor="mallory") for r in rows])
    await resign_everything(audit.pool, tmp_path / "sink", LedgerKeys.generate(), 1000)

    checks = await check_rows(audit, await rows_from(audit.pool, 1), keys.pinned)
    assert [c.signature_ok for c in checks] == [False] * 5
    assert not any(c.verified for c in checks)
    assert "BAD SIGNATURE" in checks[0].describe()
