"""The sink file itself: lines chained by signed links, read whatever a writer left there."""

from __future__ import annotations

from pathlib import Path

from proctor.audit.chain import GENESIS_HASH
from proctor.audit.checkpoints import CheckpointBody, Checkpointer, DirectorySink, sign
from proctor.audit.keys import LedgerKeys
from proctor.audit.signed import SINK_GENESIS, line_digest
from proctor.audit.verify import verify_ledger
from proctor.stores.audit_log import AuditLog
from tests.helpers.tamper import fill, sink_lines, write_sink_lines


async def test_each_line_links_to_the_one_before(audit: AuditLog, tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "sink")
    await fill(audit, "k", 25)
    await Checkpointer(audit, LedgerKeys.generate(), sink, every_rows=10).catch_up()
    lines = sink.lines()
    links = [line.signed.parsed().previous_line for line in lines if line.signed]
    assert links == [SINK_GENESIS, lines[0].digest, lines[1].digest]
    assert sink.last_line() == lines[-1].raw


def test_the_last_line_of_a_large_or_torn_file(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    assert sink.last_line() is None and sink.previous_line() == SINK_GENESIS
    big = b"x" * 200_000
    sink.path.write_bytes(b"first\n" + big + b"\n")
    assert sink.last_line() == big
    sink.path.write_bytes(b"first\ntorn")
    assert sink.last_line() == b"torn" and sink.previous_line() == line_digest(b"torn")


async def test_garbage_in_the_sink_is_a_finding_and_signing_goes_on(
    audit: AuditLog, tmp_path: Path
) -> None:
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    signer = Checkpointer(audit, keys, sink, every_rows=10)
    await fill(audit, "a", 10)
    await signer.catch_up()
    with sink.path.open("ab") as handle:
        handle.write(b"{not json")  # no newline: a torn or hostile write
    await fill(audit, "b", 10)
    assert len(await signer.catch_up()) == 1
    assert [line.signed is None for line in sink.lines()] == [False, True, False]
    report = await verify_ledger(audit, keys=keys.pinned, external=sink.lines())
    assert {f.kind for f in report.findings} == {"sink_corrupt"}


async def test_a_sink_from_before_lines_were_chained_still_verifies(
    audit: AuditLog, tmp_path: Path
) -> None:
    """Old lines carry no link; new ones link to the last old one; deleting an old line is
    still seen, through the database's copy."""
    keys, sink = LedgerKeys.generate(), DirectorySink(tmp_path / "sink")
    await fill(audit, "a", 20)
    previous = (0, GENESIS_HASH)
    for seq in (10, 20):
        digest = await audit.pool.fetchval("SELECT hash FROM audit_log WHERE seq = $1", seq)
        old = sign(
            keys,
            CheckpointBody(
                kind="checkpoint",
                seq=seq,
                hash=digest,
                previous_seq=previous[0],
                previous_hash=previous[1],
                signed_at="2026-01-01T00:00:00+00:00",
                key_id=keys.key_id,
            ),
        )
        assert "previous_line" not in old.body
        await audit.pool.execute(
            "INSERT INTO audit_checkpoints (seq, hash, key_id, body, "
            "signature) VALUES ($1, $2, $3, $4, $5)",
            seq,
            digest,
            keys.key_id,
            old.body,
            old.signature,
        )
        sink.write(old)
        previous = (seq, digest)
    await fill(audit, "b", 10)
    await Checkpointer(audit, keys, sink, every_rows=10).catch_up()
    assert (await verify_ledger(audit, keys=keys.pinned, external=sink.lines())).intact

    lines = sink_lines(sink.directory)
    write_sink_lines(sink.directory, lines[1:])
    report = await verify_ledger(audit, keys=keys.pinned, external=sink.lines())
    assert {f.kind for f in report.findings} == {"sink_missing"}
