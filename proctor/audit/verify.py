"""Verifying the ledger: every link, every signed checkpoint, against the copy outside Postgres.

Links catch a careless edit; checkpoints catch a careful one (a chain recomputed after the
edit), and their witnesses say which row and what kind of change: edited, deleted, inserted,
swapped, truncated or rewritten wholesale.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proctor.audit.chain import GENESIS_HASH, ChainVerifier, content_digest
from proctor.audit.checkpoints import (
    CheckpointBody,
    SignedCheckpoint,
    database_checkpoints,
)
from proctor.audit.store import AuditLog

Kind = Literal[
    "content_edited", "row_deleted", "row_inserted", "rows_swapped", "tail_truncated",
    "table_rewritten", "chain_recomputed", "link_broken", "checkpoint_forged",
    "checkpoint_missing", "checkpoint_mismatch", "sink_forged",
]


@dataclass(frozen=True)
class Finding:
    seq: int | None
    kind: Kind
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "ledger"
        return f"{where}: {self.kind.replace('_', ' ')}: {self.detail}"


@dataclass(frozen=True)
class Anchor:
    """A verified point: verification can resume after it."""

    seq: int
    hash: str


@dataclass
class LedgerReport:
    mode: Literal["full", "incremental"]
    start_seq: int
    rows_checked: int = 0
    last_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints_checked: int = 0
    external_checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)
    verified_anchor: Anchor | None = None
    """The newest signed checkpoint this run proved (where the next incremental run starts)."""

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def first_finding(self) -> Finding | None:
        located = [f for f in self.findings if f.seq is not None]
        if located:
            return min(located, key=lambda f: f.seq or 0)
        return self.findings[0] if self.findings else None

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["intact"] = self.intact
        return data


def locate(witness: Sequence[str], actual: Sequence[str], first_seq: int,
           ) -> tuple[int, Kind, str]:
    """Compare a signed segment's witness with the rows now there: first bad seq and kind."""
    size = len(witness)

    def at(items: Sequence[str], index: int) -> str | None:
        return items[index] if 0 <= index < len(items) else None

    index = next((k for k in range(size) if at(actual, k) != witness[k]), None)
    if index is None:
        return (first_seq + size - 1, "chain_recomputed",
                "every row still says what was signed, but the hashes were recomputed")
    seq = first_seq + index
    if index >= len(actual):
        return seq, "tail_truncated", f"the rows signed from seq {seq} on are gone"
    if index == 0 and not any(a == w for a, w in zip(actual, witness, strict=False)):
        return (seq, "table_rewritten", f"no row of the signed segment {first_seq}.."
                f"{first_seq + size - 1} matches what was signed: rewritten wholesale")
    here, after = at(actual, index), at(actual, index + 1)
    if here == at(witness, index + 1) and after == witness[index]:
        return seq, "rows_swapped", f"rows {seq} and {seq + 1} trade places (hashes recomputed)"
    if after == witness[index]:
        return seq, "row_inserted", f"a row that was never signed sits at seq {seq} " \
                                    "(later rows renumbered, hashes recomputed)"
    if here == at(witness, index + 1):
        return seq, "row_deleted", f"the row signed as seq {seq} is gone (later rows " \
                                   "renumbered, hashes recomputed)"
    return seq, "content_edited", "the row's content differs from what was signed " \
                                  "(hashes recomputed)"


_LINK_KINDS: tuple[tuple[str, Kind], ...] = (
    ("missing", "row_deleted"), ("swapped", "rows_swapped"), ("content edited", "content_edited"),
)


async def verify_ledger(
    audit: AuditLog, *, keys: dict[str, Ed25519PublicKey],
    external: Sequence[SignedCheckpoint] = (), since: Anchor | None = None,
) -> LedgerReport:
    """Check links from the start (or from `since`) and every signed checkpoint."""
    findings: list[Finding] = []
    points: dict[int, CheckpointBody] = {}
    tombstone = Anchor(0, GENESIS_HASH)
    in_database: set[int] = set()
    for table, signed in await database_checkpoints(audit.pool):
        if not signed.signature_valid(keys):
            findings.append(Finding(_seq_of(signed), "checkpoint_forged",
                                    f"a row of {table} is not signed by a trusted key"))
            continue
        body = signed.parsed()
        in_database.add(body.seq)
        points[body.seq] = body
    external_valid = 0
    for number, signed in enumerate(external, start=1):
        if not signed.signature_valid(keys):
            findings.append(Finding(_seq_of(signed), "sink_forged",
                                    f"line {number} of the external sink is not signed by a "
                                    "trusted key"))
            continue
        external_valid += 1
        body = signed.parsed()
        points.setdefault(body.seq, body)
        if body.seq not in in_database:
            findings.append(Finding(body.seq, "checkpoint_missing",
                                    f"the external sink holds a signed {body.kind} at seq "
                                    f"{body.seq} that the database no longer has"))
    for body in points.values():
        if body.kind == "tombstone" and body.seq > tombstone.seq:
            tombstone = Anchor(body.seq, body.hash)
    start = since if since is not None and since.seq > tombstone.seq else tombstone
    report = LedgerReport("incremental" if start is since else "full", start.seq + 1,
                          external_checkpoints=external_valid)

    # Signed points at or before the start: one indexed lookup each, no streaming.
    earlier = [seq for seq in points if tombstone.seq < seq <= start.seq]
    if since is not None and start is since:
        earlier.append(since.seq)
    stored: dict[int, str] = {
        r["seq"]: r["hash"] for r in await audit.pool.fetch(
            "SELECT seq, hash FROM audit_log WHERE seq = ANY($1::bigint[])", earlier)}
    mismatch_found = False
    for seq in sorted(set(earlier)):
        expected = points[seq].hash if seq in points else start.hash
        if stored.get(seq) != expected:
            mismatch_found = True
            if seq in points:
                await _mismatch(audit, points, seq, findings, tombstone)
            else:
                findings.append(Finding(seq, "checkpoint_mismatch", "the row where the last "
                                        "verification ended changed since: run a full check"))
            break
        report.checkpoints_checked += 1

    verifier = ChainVerifier(start.seq + 1, start.hash)
    point_seqs = sorted(points)
    async for page in audit.pages(start.seq + 1):
        accepted = verifier.feed_records(page)
        first, last = page[0]["seq"], page[0]["seq"] + accepted - 1
        for seq in point_seqs[bisect_left(point_seqs, first):bisect_right(point_seqs, last)]:
            point, stored_hash = points[seq], page[seq - first]["hash"]
            if point.hash == stored_hash:
                report.checkpoints_checked += 1
                if point.kind == "checkpoint":
                    report.verified_anchor = Anchor(seq, stored_hash)
            elif not mismatch_found:
                mismatch_found = True
                await _mismatch(audit, points, seq, findings, tombstone)
        if accepted < len(page):
            break
    chain = verifier.report()
    report.rows_checked, report.last_seq, report.head_hash = (
        chain.rows_checked, chain.last_seq, chain.head_hash)
    if chain.first_break is not None:
        kind: Kind = next(
            (k for words, k in _LINK_KINDS if words in chain.first_break.problem), "link_broken")
        findings.append(Finding(chain.first_break.seq, kind, chain.first_break.problem))
    elif points and max(points) > chain.last_seq and not mismatch_found:
        findings.append(Finding(chain.last_seq + 1, "tail_truncated",
                                f"the log ends at seq {chain.last_seq} but a signed checkpoint "
                                f"covers seq {max(points)}: rows were removed from the end"))
    report.findings = sorted(findings, key=lambda f: (f.seq is None, f.seq or 0))
    if not report.intact:
        report.verified_anchor = None
    return report


async def _mismatch(audit: AuditLog, points: dict[int, CheckpointBody], seq: int,
                    findings: list[Finding], tombstone: Anchor) -> None:
    """A signed point disagrees with the table: use its witness to name the row and change."""
    body = points[seq]
    witness = body.witness_digests()
    if body.kind != "checkpoint" or not witness:
        findings.append(Finding(seq, "checkpoint_mismatch",
                                f"row {seq} no longer has the hash signed in the {body.kind}"))
        return
    first = body.previous_seq + 1
    rows = [row async for row in audit.rows(first, body.seq + 2)]
    actual = [content_digest(row) for row in rows if row.seq >= first]
    bad_seq, kind, detail = locate(witness, actual, first)
    if kind == "table_rewritten" and body.previous_seq > tombstone.seq:
        kind = "content_edited"
    findings.append(Finding(bad_seq, kind, f"{detail} (signed checkpoint at seq {seq})"))


def _seq_of(signed: SignedCheckpoint) -> int | None:
    try:
        return signed.parsed().seq
    except ValueError:
        return None
