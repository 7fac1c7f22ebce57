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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proctor.audit.anchor import Anchor
from proctor.audit.chain import GENESIS_HASH
from proctor.audit.findings import Finding, FindingKind
from proctor.audit.rehash import Rehash
from proctor.audit.signed import SignedCheckpoint
from proctor.audit.signed_points import cross_check
from proctor.audit.sink import SinkLine
from proctor.audit.witness import locate
from proctor.stores.audit_checkpoints import database_checkpoints
from proctor.stores.audit_log import AuditLog

__all__ = ["Anchor", "Finding", "FindingKind", "LedgerReport", "locate", "verify_ledger"]
"""`Anchor`, `Finding`, `FindingKind` and `locate` live in their own modules; named here for
the imports that predate them."""


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


async def verify_ledger(
    audit: AuditLog,
    *,
    keys: dict[str, Ed25519PublicKey],
    external: Sequence[SignedCheckpoint] | Sequence[SinkLine] | None = None,
    since: Anchor | None = None,
    full: bool = False,
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
    report = LedgerReport(
        "incremental" if resume else "full",
        start.seq + 1,
        external_checkpoints=points.in_sink,
        database_checkpoints=points.in_database,
        sink_lines=None if lines is None else points.sink_lines,
    )
    rows = Rehash(audit, points.checkpoints, tombstone)
    if resume:
        report.not_reread = (tombstone.seq + 1, start.seq)
        report.checkpoints_checked += await rows.recheck_points(start)
    chain, newest = await rows.stream(start, remembered=None if resume else since)
    report.rows_checked, report.last_seq, report.head_hash = (
        chain.rows_checked,
        chain.last_seq,
        chain.head_hash,
    )
    report.checkpoints_checked += rows.matched
    report.findings = _ordered([*points.findings, *rows.findings])
    covered = max([s for s in points.checkpoints if s <= report.last_seq] + [tombstone.seq])
    report.unsigned_from = covered + 1 if report.last_seq > covered else None
    if report.intact:
        anchor = newest or (since if resume else None)
        if anchor is not None:
            report.verified_anchor = Anchor(
                anchor.seq, anchor.hash, points.sink_lines, points.sink_head
            )
    return report


def _as_lines(external: Sequence[SignedCheckpoint] | Sequence[SinkLine]) -> list[SinkLine]:
    items: Sequence[SignedCheckpoint | SinkLine] = external
    return [
        item if isinstance(item, SinkLine) else SinkLine.of(number, item)
        for number, item in enumerate(items, start=1)
    ]


def _ordered(findings: list[Finding]) -> list[Finding]:
    unique = list(dict.fromkeys(findings))
    return sorted(unique, key=lambda f: (f.seq is None, f.seq or 0))
