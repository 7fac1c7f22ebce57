"""Re-hashing rows against the trusted checkpoints; damage located through the witnesses.

A checkpoint whose row no longer holds the signed hash, or a link that breaks, is where damage
shows, not where it starts: the covering checkpoint's witness (a content digest per row) names
the first row that differs and how, even when the hashes up to there were recomputed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from proctor.audit.anchor import Anchor
from proctor.audit.chain import (
    ChainBreak,
    ChainReport,
    ChainRow,
    ChainVerifier,
    content_digest,
    row_hash,
)
from proctor.audit.findings import Finding, FindingKind
from proctor.audit.signed import CheckpointBody
from proctor.audit.witness import locate
from proctor.stores.audit_log import AuditLog


class Rehash:
    """The rows against the trusted checkpoints: one finding per damaged place, located."""

    def __init__(
        self, audit: AuditLog, checkpoints: dict[int, CheckpointBody], tombstone: Anchor
    ) -> None:
        self.audit = audit
        self.checkpoints = checkpoints
        self.seqs = sorted(checkpoints)
        self.tombstone = tombstone
        self.findings: list[Finding] = []
        self.matched = 0
        """Checkpoints whose row, re-hashed in `stream`, holds the signed hash."""
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
        rows = await self.audit.rows_at(wanted)
        held = 0
        for seq in sorted(expected):
            problem = self._point_problem(rows, seq, expected[seq])
            if problem is not None:
                await self._damage(seq, *problem)
                break
            held += 1 if seq in self.checkpoints else 0
        return held

    def _point_problem(
        self, rows: dict[int, ChainRow], seq: int, signed_hash: str
    ) -> tuple[int, FindingKind, str] | None:
        row, before = rows.get(seq), rows.get(seq - 1)
        if row is None:
            return seq, FindingKind.ROW_DELETED, "the row a signed checkpoint covers is gone"
        if before is not None and row_hash(before) != before.hash:
            return (
                seq - 1,
                FindingKind.CONTENT_EDITED,
                "hash does not match the row's content (content edited)",
            )
        if row_hash(row) != row.hash:
            return (
                seq,
                FindingKind.CONTENT_EDITED,
                "hash does not match the row's content (content edited)",
            )
        if row.hash != signed_hash:
            return (
                seq,
                FindingKind.CHECKPOINT_MISMATCH,
                "the row no longer has the hash that was "
                "signed (or that the last verification saw)",
            )
        if seq - 1 > self.tombstone.seq and before is None:
            return seq - 1, FindingKind.ROW_DELETED, "the row before a signed checkpoint is gone"
        linked = before.hash if before is not None else self.tombstone.hash
        if row.prev_hash != linked:
            return (
                seq,
                FindingKind.LINK_BROKEN,
                "prev_hash does not match the previous row's hash "
                "(the rows before it were rewritten)",
            )
        return None

    async def stream(
        self,
        start: Anchor,
        remembered: Anchor | None = None,
    ) -> tuple[ChainReport, Anchor | None]:
        """Re-hash every row after `start`: how far the chain held, and the newest checkpoint
        that held. `remembered`: a row an earlier verification saw, which must be unchanged."""
        verifier = ChainVerifier(start.seq + 1, start.hash)
        newest = None
        async for page in self.audit.pages(start.seq + 1):
            accepted = verifier.feed_records(page)
            first, last = page[0]["seq"], page[0]["seq"] + accepted - 1
            if (
                remembered is not None
                and first <= remembered.seq <= last
                and page[remembered.seq - first]["hash"] != remembered.hash
            ):
                await self._damage(
                    remembered.seq,
                    remembered.seq,
                    FindingKind.CHECKPOINT_MISMATCH,
                    "the row where the last verification ended changed since",
                )
            for seq in self.seqs[bisect_left(self.seqs, first) : bisect_right(self.seqs, last)]:
                stored = page[seq - first]["hash"]
                if self.checkpoints[seq].hash == stored:
                    self.matched += 1
                    newest = Anchor(seq, stored)
                elif not self.mismatch_found:
                    await self._damage(
                        seq,
                        seq,
                        FindingKind.CHECKPOINT_MISMATCH,
                        f"row {seq} no longer has the hash signed in the checkpoint",
                    )
            if accepted < len(page):
                break
        chain = verifier.report()
        if chain.first_break is not None:
            await self._broken(chain.first_break)
        elif self.seqs and self.seqs[-1] > chain.last_seq and not self.mismatch_found:
            self.findings.append(
                Finding(
                    chain.last_seq + 1,
                    FindingKind.TAIL_TRUNCATED,
                    f"the log ends at seq {chain.last_seq} "
                    f"but a signed checkpoint covers seq {self.seqs[-1]}: rows were removed from "
                    "the end",
                )
            )
        return chain, newest

    async def _broken(self, found: ChainBreak) -> None:
        """A link breaks at `found.seq`: the witness of the checkpoint over it may show the
        real damage earlier (an edit whose hashes were recomputed up to here)."""
        kind = found.kind
        located = await self._witnessed(self._covering(found.seq))
        if (
            located is None
            or located.kind == FindingKind.CHAIN_RECOMPUTED
            or located.seq is None
            or located.seq > found.seq
        ):
            self.findings.append(Finding(found.seq, kind, found.problem))
        elif located.seq == found.seq:
            self.findings.append(
                Finding(
                    found.seq,
                    located.kind if kind == FindingKind.LINK_BROKEN else kind,
                    found.problem,
                )
            )
        else:
            self.findings.extend([located, Finding(found.seq, kind, found.problem)])

    async def _damage(self, point: int, seq: int, kind: FindingKind, detail: str) -> None:
        """A signed point does not hold: its witness names the row and the change."""
        self.mismatch_found = True
        located = await self._witnessed(self.checkpoints.get(point))
        recomputed_only = located is not None and located.kind == FindingKind.CHAIN_RECOMPUTED
        if located is None or (recomputed_only and kind != FindingKind.CHECKPOINT_MISMATCH):
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
        if kind == FindingKind.TABLE_REWRITTEN and body.previous_seq > self.tombstone.seq:
            kind = FindingKind.CONTENT_EDITED
        return Finding(seq, kind, f"{detail} (signed checkpoint at seq {body.seq})")
