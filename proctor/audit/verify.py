"""Verifying the ledger: every link, every signed point, both stores, against pinned keys only.

Links catch a careless edit; signed checkpoints catch a careful one (a chain recomputed after
the edit), and their witnesses say which row and what kind of change: edited, deleted,
inserted, swapped, truncated or rewritten wholesale. Nothing stored is trusted for itself: a
checkpoint counts only when a pinned key signed it, and the two stores vouch for each other.

A full run re-hashes every row. An incremental run (from the anchor an earlier run left in the
verifier's own state) re-hashes only the rows after it; before it, it re-checks each signed
point (the row there, the row before it, their link and the signed hash), which catches any
rewrite that reaches a signed point, and it reports the rest as not re-read (`not_reread`)
rather than vouching for rows it did not read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proctor.audit.chain import (
    GENESIS_HASH,
    ChainBreak,
    ChainRow,
    ChainVerifier,
    content_digest,
    row_hash,
)
from proctor.audit.checkpoints import database_checkpoints
from proctor.audit.findings import Finding, Kind
from proctor.audit.signed import CheckpointBody, SignedCheckpoint
from proctor.audit.signed_points import cross_check
from proctor.audit.sink import SinkLine
from proctor.audit.store import HASHING_COLUMNS, AuditLog
from proctor.audit.witness import locate

__all__ = ["Anchor", "Finding", "Kind", "LedgerReport", "locate", "verify_ledger"]
"""`Finding`, `Kind` and `locate` live in their own modules; named here for older imports."""


@dataclass(frozen=True)
class Anchor:
    """A verified point: verification can resume after it. `sink_lines`/`sink_head`: how many
    lines the sink had then and the digest of the last, so lines lost since are noticed."""

    seq: int
    hash: str
    sink_lines: int = 0
    sink_head: str = ""


@dataclass
class LedgerReport:
    mode: Literal["full", "incremental"]
    start_seq: int
    """The first row re-hashed in this run."""
    rows_checked: int = 0
    """Rows re-hashed and linked in this run."""
    last_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints_checked: int = 0
    """Trusted signed checkpoints whose row still holds the signed hash."""
    external_checkpoints: int = 0
    """Trusted signed points in the external sink."""
    database_checkpoints: int = 0
    """Trusted signed points in the database."""
    sink_lines: int | None = None
    """Lines in the sink (None: no sink consulted)."""
    not_reread: tuple[int, int] | None = None
    """Incremental: rows first..last not re-hashed in this run (an earlier run verified them
    up to a signed checkpoint; this one re-checked only their signed points)."""
    unsigned_from: int | None = None
    """The first row no trusted checkpoint covers yet (None: every row is covered)."""
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


_LINK_KINDS: tuple[tuple[str, Kind], ...] = (
    ("missing", "row_deleted"), ("swapped", "rows_swapped"), ("content edited", "content_edited"),
)


def _link_kind(problem: str) -> Kind:
    return next((k for words, k in _LINK_KINDS if words in problem), "link_broken")


async def verify_ledger(
    audit: AuditLog, *, keys: dict[str, Ed25519PublicKey],
    external: Sequence[SignedCheckpoint] | Sequence[SinkLine] | None = None,
    since: Anchor | None = None, full: bool = False,
) -> LedgerReport:
    """Check both stores' signed points against `keys` (pinned: never the stores' own), then
    the rows from the start, or from `since` with every signed point before it re-checked.

    `external`: the sink's lines (`DirectorySink.lines()`, or `.read()`); None: not consulted.
    `since`: where the last verification ended; with `full`, the rows are re-hashed from the
    start and `since` is only held to (its row and its view of the sink must not have changed).
    """
    lines = None if external is None else _as_lines(external)
    seen = (since.sink_lines, since.sink_head) if since is not None and since.sink_lines else None
    points = cross_check(await database_checkpoints(audit.pool), lines, keys, seen)
    tombstone = Anchor(*points.newest_tombstone())
    resume = since is not None and not full and since.seq > tombstone.seq
    start = since if resume and since is not None else tombstone
    report = LedgerReport("incremental" if resume else "full", start.seq + 1,
                          external_checkpoints=points.in_sink,
                          database_checkpoints=points.in_database,
                          sink_lines=None if lines is None else points.sink_lines)
    rows = _RowCheck(audit, points.checkpoints, tombstone)
    if resume:
        report.not_reread = (tombstone.seq + 1, start.seq)
        report.checkpoints_checked += await rows.recheck_points(start)
    newest = await rows.stream(start, report, remembered=None if resume else since)
    report.findings = _ordered([*points.findings, *rows.findings])
    covered = max([s for s in points.checkpoints if s <= report.last_seq] + [tombstone.seq])
    report.unsigned_from = covered + 1 if report.last_seq > covered else None
    if report.intact:
        anchor = newest or (since if resume else None)
        if anchor is not None:
            report.verified_anchor = Anchor(anchor.seq, anchor.hash, points.sink_lines,
                                            points.sink_head)
    return report


class _RowCheck:
    """The rows against the trusted checkpoints: one finding per damaged place, located."""

    def __init__(self, audit: AuditLog, checkpoints: dict[int, CheckpointBody],
                 tombstone: Anchor) -> None:
        self.audit = audit
        self.checkpoints = checkpoints
        self.seqs = sorted(checkpoints)
        self.tombstone = tombstone
        self.findings: list[Finding] = []
        self.mismatch_found = False

    async def recheck_points(self, start: Anchor) -> int:
        """Each signed point up to `start`, with one indexed read: the row there and the row
        before it re-hashed, their link, and the signed hash. Returns how many held."""
        floor = self.tombstone.seq
        points = [s for s in self.seqs if floor < s <= start.seq]
        expected = {s: self.checkpoints[s].hash for s in points}
        if expected.setdefault(start.seq, start.hash) != start.hash:
            expected[start.seq] = ""  # the anchor disagrees with the signed point there
        wanted = sorted({*expected, *(s - 1 for s in expected if s - 1 > floor)})
        rows = {r[0]: ChainRow(*r) for r in await self.audit.pool.fetch(
            f"SELECT {HASHING_COLUMNS} FROM audit_log WHERE seq = ANY($1::bigint[])", wanted)}
        held = 0
        for seq in sorted(expected):
            problem = self._point_problem(rows, seq, expected[seq])
            if problem is not None:
                await self._damage(seq, *problem)
                break
            held += 1 if seq in self.checkpoints else 0
        return held

    def _point_problem(self, rows: dict[int, ChainRow], seq: int,
                       signed_hash: str) -> tuple[int, Kind, str] | None:
        row, before = rows.get(seq), rows.get(seq - 1)
        if row is None:
            return seq, "row_deleted", "the row a signed checkpoint covers is gone"
        if before is not None and row_hash(before) != before.hash:
            return seq - 1, "content_edited", "hash does not match the row's content " \
                                              "(content edited)"
        if row_hash(row) != row.hash:
            return seq, "content_edited", "hash does not match the row's content (content " \
                                          "edited)"
        if row.hash != signed_hash:
            return seq, "checkpoint_mismatch", "the row no longer has the hash that was " \
                                               "signed (or that the last verification saw)"
        if seq - 1 > self.tombstone.seq and before is None:
            return seq - 1, "row_deleted", "the row before a signed checkpoint is gone"
        linked = before.hash if before is not None else self.tombstone.hash
        if row.prev_hash != linked:
            return seq, "link_broken", "prev_hash does not match the previous row's hash " \
                                       "(the rows before it were rewritten)"
        return None

    async def stream(self, start: Anchor, report: LedgerReport,
                     remembered: Anchor | None = None) -> Anchor | None:
        """Re-hash every row after `start`; returns the newest checkpoint that held.
        `remembered`: a row an earlier verification saw, which must still be as it saw it."""
        verifier = ChainVerifier(start.seq + 1, start.hash)
        newest = None
        async for page in self.audit.pages(start.seq + 1):
            accepted = verifier.feed_records(page)
            first, last = page[0]["seq"], page[0]["seq"] + accepted - 1
            if remembered is not None and first <= remembered.seq <= last \
                    and page[remembered.seq - first]["hash"] != remembered.hash:
                await self._damage(remembered.seq, remembered.seq, "checkpoint_mismatch",
                                   "the row where the last verification ended changed since")
            for seq in self.seqs[bisect_left(self.seqs, first):bisect_right(self.seqs, last)]:
                stored = page[seq - first]["hash"]
                if self.checkpoints[seq].hash == stored:
                    report.checkpoints_checked += 1
                    newest = Anchor(seq, stored)
                elif not self.mismatch_found:
                    await self._damage(seq, seq, "checkpoint_mismatch",
                                       f"row {seq} no longer has the hash signed in the "
                                       "checkpoint")
            if accepted < len(page):
                break
        chain = verifier.report()
        report.rows_checked, report.last_seq, report.head_hash = (
            chain.rows_checked, chain.last_seq, chain.head_hash)
        if chain.first_break is not None:
            await self._broken(chain.first_break)
        elif self.seqs and self.seqs[-1] > chain.last_seq and not self.mismatch_found:
            self.findings.append(Finding(
                chain.last_seq + 1, "tail_truncated", f"the log ends at seq {chain.last_seq} "
                f"but a signed checkpoint covers seq {self.seqs[-1]}: rows were removed from "
                "the end"))
        return newest

    async def _broken(self, found: ChainBreak) -> None:
        """A link breaks at `found.seq`: the witness of the checkpoint over it may show the
        real damage earlier (an edit whose hashes were recomputed up to here)."""
        kind = _link_kind(found.problem)
        located = await self._witnessed(self._covering(found.seq))
        if located is None or located.kind == "chain_recomputed" or located.seq is None \
                or located.seq > found.seq:
            self.findings.append(Finding(found.seq, kind, found.problem))
        elif located.seq == found.seq:
            self.findings.append(Finding(found.seq, located.kind if kind == "link_broken"
                                         else kind, found.problem))
        else:
            self.findings.extend([located, Finding(found.seq, kind, found.problem)])

    async def _damage(self, point: int, seq: int, kind: Kind, detail: str) -> None:
        """A signed point does not hold: its witness names the row and the change."""
        self.mismatch_found = True
        located = await self._witnessed(self.checkpoints.get(point))
        recomputed_only = located is not None and located.kind == "chain_recomputed"
        if located is None or (recomputed_only and kind != "checkpoint_mismatch"):
            self.findings.append(Finding(seq, kind, detail))
        else:
            self.findings.append(located)

    def _covering(self, seq: int) -> CheckpointBody | None:
        index = bisect_left(self.seqs, seq)
        if index == len(self.seqs):
            return None
        body = self.checkpoints[self.seqs[index]]
        return body if body.previous_seq < seq else None

    async def _witnessed(self, body: CheckpointBody | None) -> Finding | None:
        if body is None or not body.witness:
            return None
        first = body.previous_seq + 1
        actual = [content_digest(row) async for row in self.audit.rows(first, body.seq + 2)]
        seq, kind, detail = locate(body.witness_digests(), actual, first)
        if kind == "table_rewritten" and body.previous_seq > self.tombstone.seq:
            kind = "content_edited"
        return Finding(seq, kind, f"{detail} (signed checkpoint at seq {body.seq})")


def _as_lines(external: Sequence[SignedCheckpoint] | Sequence[SinkLine]) -> list[SinkLine]:
    items: Sequence[SignedCheckpoint | SinkLine] = external
    return [item if isinstance(item, SinkLine) else SinkLine.of(number, item)
            for number, item in enumerate(items, start=1)]


def _ordered(findings: list[Finding]) -> list[Finding]:
    unique = list(dict.fromkeys(findings))
    return sorted(unique, key=lambda f: (f.seq is None, f.seq or 0))
