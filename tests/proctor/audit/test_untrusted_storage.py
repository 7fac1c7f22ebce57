"""The verifier trusts neither Postgres nor the sink: only keys pinned outside both.

Each test is an attack by a database superuser, by someone who can write the sink, or both,
and checks that verification is not fooled and names where the damage starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proctor.audit.checkpoints import (
    ChainBrokenError,
    Checkpointer,
    DirectorySink,
    SignedCheckpoint,
)
from proctor.audit.keys import LedgerKeys
from proctor.audit.verify import Anchor, LedgerReport, verify_ledger
from proctor.stores.audit_log import AuditLog
from tests.helpers.tamper import (
    as_superuser,
    fill,
    resign_everything,
    rewrite,
    rows_from,
    sink_lines,
    write_sink_lines,
)

EVERY = 10


@dataclass
class Ledger:
    audit: AuditLog
    keys: LedgerKeys
    sink: DirectorySink

    @property
    def pinned(self) -> dict[str, Ed25519PublicKey]:
        return {self.keys.key_id: self.keys.signing.public_key()}

    async def verify(self, since: Anchor | None = None) -> LedgerReport:
        return await verify_ledger(
            self.audit, keys=self.pinned, external=self.sink.read(), since=since
        )


@pytest.fixture
async def ledger(audit: AuditLog, tmp_path: Path) -> Ledger:
    """45 rows; checkpoints at 10, 20, 30, 40 and 45."""
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    await fill(audit, "k", 45)
    await Checkpointer(audit, keys, sink, every_rows=EVERY).catch_up()
    return Ledger(audit, keys, sink)


def first(report: LedgerReport) -> tuple[int | None, str]:
    finding = report.first_finding
    assert finding is not None, "tampering went unnoticed"
    return finding.seq, finding.kind


def kinds(report: LedgerReport) -> set[str]:
    return {f.kind for f in report.findings}


async def test_the_untouched_ledger_is_intact(ledger: Ledger) -> None:
    report = await ledger.verify()
    assert report.intact, report.findings
    assert report.checkpoints_checked == 5 and report.external_checkpoints == 5


async def test_a_rewrite_resigned_with_the_attackers_key_is_forged(
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    rows = await rows_from(ledger.audit.pool, 1)
    await rewrite(ledger.audit.pool, 1, [replace(r, actor="mallory") for r in rows])
    await resign_everything(ledger.audit.pool, ledger.sink.directory, LedgerKeys.generate(), EVERY)
    report = await ledger.verify()
    assert not report.intact
    assert {"checkpoint_forged", "sink_forged"} <= kinds(report)


@pytest.mark.parametrize("dropped", [0, 2, 4], ids=["first", "middle", "last"])
async def test_a_sink_line_deleted(ledger: Ledger, dropped: int) -> None:
    lines = sink_lines(ledger.sink.directory)
    write_sink_lines(ledger.sink.directory, lines[:dropped] + lines[dropped + 1 :])
    report = await ledger.verify()
    assert not report.intact
    assert "sink_missing" in kinds(report)
    assert first(report)[0] == ((dropped + 1) * EVERY if dropped < 4 else 45)


async def test_the_sink_emptied_while_the_database_holds_checkpoints(ledger: Ledger) -> None:
    write_sink_lines(ledger.sink.directory, [])
    report = await ledger.verify()
    assert not report.intact
    assert first(report) == (10, "sink_missing")


async def test_the_sink_file_removed(ledger: Ledger) -> None:
    (ledger.sink.directory / "checkpoints.jsonl").unlink()
    report = await ledger.verify()
    assert not report.intact and "sink_missing" in kinds(report)


async def test_a_sink_line_deleted_and_the_database_row_too(ledger: Ledger) -> None:
    """Both stores lose the checkpoint at 20: the line after it no longer follows its
    predecessor, and that link is signed."""
    lines = sink_lines(ledger.sink.directory)
    write_sink_lines(ledger.sink.directory, lines[:1] + lines[2:])
    await as_superuser(ledger.audit.pool, "DELETE FROM audit_checkpoints WHERE seq = 20")
    report = await ledger.verify()
    assert not report.intact
    assert "sink_chain_broken" in kinds(report)


async def test_sink_lines_reordered(ledger: Ledger) -> None:
    lines = sink_lines(ledger.sink.directory)
    write_sink_lines(ledger.sink.directory, [lines[1], lines[0], *lines[2:]])
    report = await ledger.verify()
    assert "sink_chain_broken" in kinds(report)


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
async def test_the_newest_checkpoint_removed_from_both_after_a_verification(
    ledger: Ledger,
    full: bool,
) -> None:
    """Deleting the newest line leaves no successor to notice; the verifier's own memory of
    the sink (kept in its trusted state directory) does, in either mode."""
    anchor = (await ledger.verify()).verified_anchor
    assert anchor is not None
    write_sink_lines(ledger.sink.directory, sink_lines(ledger.sink.directory)[:-1])
    await as_superuser(ledger.audit.pool, "DELETE FROM audit_checkpoints WHERE seq = 45")
    report = await verify_ledger(
        ledger.audit, keys=ledger.pinned, external=ledger.sink.lines(), since=anchor, full=full
    )
    assert report.mode == ("full" if full else "incremental")
    assert not report.intact and "sink_truncated" in kinds(report)


async def test_full_mode_holds_to_the_row_the_last_verification_saw(ledger: Ledger) -> None:
    """Rows rewritten and every signed point gone from both stores: the row the verifier
    remembers still tells."""
    anchor = (await ledger.verify()).verified_anchor
    assert anchor is not None
    rows = await rows_from(ledger.audit.pool, 1)
    await rewrite(ledger.audit.pool, 1, [replace(r, actor="mallory") for r in rows])
    await as_superuser(ledger.audit.pool, "DELETE FROM audit_checkpoints")
    write_sink_lines(ledger.sink.directory, [])
    report = await verify_ledger(
        ledger.audit,
        keys=ledger.pinned,
        external=ledger.sink.lines(),
        since=replace(anchor, sink_lines=0),
        full=True,
    )
    assert first(report) == (45, "checkpoint_mismatch")


async def test_the_signer_refuses_when_the_database_lost_its_checkpoints(
    ledger: Ledger,
) -> None:
    """A rewrite after deleting the database's checkpoints must not get the genuine key's
    signature: the sink's last line, ours, is past what the database says was signed."""
    rows = await rows_from(ledger.audit.pool, 1)
    await rewrite(ledger.audit.pool, 1, [replace(r, actor="mallory") for r in rows])
    await as_superuser(ledger.audit.pool, "DELETE FROM audit_checkpoints")
    signer = Checkpointer(ledger.audit, ledger.keys, ledger.sink, every_rows=EVERY)
    with pytest.raises(ChainBrokenError, match="past the database's newest signed point"):
        await signer.catch_up()
    assert await ledger.audit.pool.fetchval("SELECT count(*) FROM audit_checkpoints") == 0
    assert len(ledger.sink.lines()) == 5


@pytest.mark.parametrize("edited", [13, 17, 19])
async def test_an_edit_rehashed_up_to_the_next_checkpoint_is_named_at_the_edited_row(
    ledger: Ledger,
    edited: int,
) -> None:
    """The attacker re-hashes rows edited..19 so every link before the checkpoint at 20
    holds; the first bad seq is the edited row, not the checkpoint's."""
    rows = await rows_from(ledger.audit.pool, edited, 19)
    await rewrite(
        ledger.audit.pool, edited, [replace(rows[0], actor="mallory"), *rows[1:]], keep_after=True
    )
    report = await ledger.verify()
    assert first(report) == (edited, "content_edited")


async def test_an_edit_rehashed_through_the_checkpoint_row_is_named_at_the_edited_row(
    ledger: Ledger,
) -> None:
    rows = await rows_from(ledger.audit.pool, 24, 30)
    await rewrite(
        ledger.audit.pool, 24, [replace(rows[0], actor="mallory"), *rows[1:]], keep_after=True
    )
    assert first(await ledger.verify()) == (24, "content_edited")


async def test_incremental_rechecks_every_signed_point_before_where_it_starts(
    ledger: Ledger,
) -> None:
    """After a clean run, a careful edit of old rows (re-hashed up to a checkpoint) is found
    by the next plain run at the edited row, without re-reading the whole ledger."""
    anchor = (await ledger.verify()).verified_anchor
    assert anchor is not None and anchor.seq == 45
    rows = await rows_from(ledger.audit.pool, 15, 19)
    await rewrite(
        ledger.audit.pool, 15, [replace(rows[0], actor="mallory"), *rows[1:]], keep_after=True
    )
    report = await ledger.verify(since=anchor)
    assert report.mode == "incremental"
    assert first(report) == (15, "content_edited")


async def test_incremental_says_which_rows_it_did_not_reread(ledger: Ledger) -> None:
    """An edit that leaves every signed point alone is out of reach of an incremental run:
    the report must say so rather than vouch for those rows; --full finds the row."""
    anchor = (await ledger.verify()).verified_anchor
    assert anchor is not None
    await as_superuser(ledger.audit.pool, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 15")
    report = await ledger.verify(since=anchor)
    assert report.rows_checked == 0
    assert report.not_reread == (1, 45)
    assert first(await ledger.verify()) == (15, "content_edited")


async def test_a_crash_between_the_sink_and_the_commit_heals(
    audit: AuditLog, tmp_path: Path
) -> None:
    """The sink line is fsynced before the database row commits; if the commit is lost, the
    next checkpoint restores the row from the line instead of signing that seq twice."""
    keys = LedgerKeys.generate()

    class LosesTheCommit(DirectorySink):
        def write(self, signed: SignedCheckpoint) -> None:
            super().write(signed)
            raise OSError("the worker died after the fsync")

    await fill(audit, "k", 12)
    with pytest.raises(OSError):
        await Checkpointer(audit, keys, LosesTheCommit(tmp_path / "sink")).checkpoint()
    assert await audit.pool.fetchval("SELECT count(*) FROM audit_checkpoints") == 0
    sink = DirectorySink(tmp_path / "sink")
    await Checkpointer(audit, keys, sink).catch_up()
    assert len(sink.read()) == 1
    report = await verify_ledger(
        audit, keys={keys.key_id: keys.signing.public_key()}, external=sink.read()
    )
    assert report.intact, report.findings
