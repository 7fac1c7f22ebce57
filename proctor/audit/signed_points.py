"""The signed points (checkpoints, tombstones) both stores hold, checked against each other, pure.

Neither store is trusted. A point counts only when signed by a pinned key; the sink's lines
must each follow the one before (the link is signed); and the two stores must hold the same
points, so a line deleted from the sink, a file emptied, or a row deleted from the database
shows in the other. What the verifier saw of the sink last time (its trusted state) catches
the one thing a link cannot: lines removed from the end of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from proctor.audit.chain import GENESIS_HASH
from proctor.audit.findings import Finding, FindingKind
from proctor.audit.signed import SINK_GENESIS, CheckpointBody, SignedCheckpoint
from proctor.audit.sink import SinkLine

Key = tuple[str, int]
"""(kind, seq): a tombstone and a checkpoint may share a seq."""


@dataclass
class SignedPoints:
    checkpoints: dict[int, CheckpointBody] = field(default_factory=dict)
    tombstones: dict[int, CheckpointBody] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    in_database: int = 0
    in_sink: int = 0
    sink_lines: int = 0
    sink_head: str = ""
    """Digest of the sink's last line ("" when it has none)."""

    def add(self, body: CheckpointBody) -> None:
        target = self.checkpoints if body.kind == "checkpoint" else self.tombstones
        target.setdefault(body.seq, body)

    def newest_tombstone(self) -> tuple[int, str]:
        if not self.tombstones:
            return 0, GENESIS_HASH
        seq = max(self.tombstones)
        return seq, self.tombstones[seq].hash


def cross_check(
    database: Sequence[tuple[str, SignedCheckpoint]],
    sink: Sequence[SinkLine] | None,
    keys: dict[str, Ed25519PublicKey],
    seen: tuple[int, str] | None = None,
) -> SignedPoints:
    """Trusted points of both stores and what is wrong between them. `sink` None: the sink
    was not consulted; `seen`: (lines, digest of the last) when the sink was last verified."""
    points = SignedPoints()
    stored: dict[Key, SignedCheckpoint] = {}
    forged: dict[str, list[int | None]] = {}
    for table, signed in database:
        if not signed.signature_valid(keys):
            forged.setdefault(table, []).append(_seq_of(signed))
            continue
        body = signed.parsed()
        stored.setdefault((body.kind, body.seq), signed)
        points.add(body)
    for table, seqs in forged.items():
        points.findings.append(
            _grouped(
                seqs,
                FindingKind.CHECKPOINT_FORGED,
                f"row(s) of {table} are not signed by a trusted key",
            )
        )
    points.in_database = len(stored)
    if sink is None:
        return points
    outside = _sink_points(sink, keys, points)
    _compare(stored, outside, bool(sink), points.findings)
    if seen is not None:
        points.findings.extend(_since_last_time(sink, *seen))
    return points


def _sink_points(
    sink: Sequence[SinkLine], keys: dict[str, Ed25519PublicKey], points: SignedPoints
) -> dict[Key, SignedCheckpoint]:
    outside: dict[Key, SignedCheckpoint] = {}
    previous: SinkLine | None = None
    linked = False
    forged: list[SinkLine] = []
    for line in sink:
        signed = line.signed
        if signed is None:
            points.findings.append(
                Finding(
                    None,
                    FindingKind.SINK_CORRUPT,
                    f"line {line.number} of the sink is not a signed checkpoint",
                )
            )
        elif not signed.signature_valid(keys):
            forged.append(line)
        else:
            body = signed.parsed()
            problem = _link_problem(body, line, previous, linked)
            if problem is not None:
                points.findings.append(Finding(body.seq, FindingKind.SINK_CHAIN_BROKEN, problem))
            linked = linked or body.previous_line is not None
            outside.setdefault((body.kind, body.seq), signed)
            points.add(body)
        previous = line
    if forged:
        numbers = ", ".join(str(line.number) for line in forged[:5])
        points.findings.append(
            _grouped(
                [_seq_of(line.signed) for line in forged if line.signed is not None],
                FindingKind.SINK_FORGED,
                f"line(s) of the sink are not signed by a trusted key (line {numbers}"
                f"{', …' if len(forged) > 5 else ''})",
            )
        )
    points.in_sink = len(outside)
    points.sink_lines = len(sink)
    points.sink_head = sink[-1].digest if sink else ""
    return outside


def _link_problem(
    body: CheckpointBody, line: SinkLine, previous: SinkLine | None, linked: bool
) -> str | None:
    if body.previous_line is None:
        return (
            None
            if not linked
            else (
                f"line {line.number} carries no link to the line "
                "before it, yet lines before it do: it was inserted"
            )
        )
    if body.previous_line == (SINK_GENESIS if previous is None else previous.digest):
        return None
    if previous is None:
        return (
            "line 1 follows a line that is not there: lines were removed from the start of the sink"
        )
    return (
        f"line {line.number} does not follow line {previous.number}: lines were deleted, "
        "inserted or reordered before it"
    )


def _compare(
    stored: dict[Key, SignedCheckpoint],
    outside: dict[Key, SignedCheckpoint],
    sink_has_lines: bool,
    findings: list[Finding],
) -> None:
    for key in sorted(stored.keys() & outside.keys(), key=lambda k: k[1]):
        if stored[key] != outside[key]:
            findings.append(
                Finding(
                    key[1],
                    FindingKind.SINK_MISMATCH,
                    f"the database and the sink hold different signed {key[0]}s at seq {key[1]}",
                )
            )
    if only_stored := sorted(seq for _, seq in stored.keys() - outside.keys()):
        where = (
            "missing from the external sink: lines deleted, or the file truncated"
            if sink_has_lines
            else "missing from the external sink, which holds no line "
            "at all: the file was emptied or removed"
        )
        findings.append(
            _grouped(
                list(only_stored),
                FindingKind.SINK_MISSING,
                f"signed point(s) held by the database are {where}",
            )
        )
    if only_outside := sorted(seq for _, seq in outside.keys() - stored.keys()):
        findings.append(
            _grouped(
                list(only_outside),
                FindingKind.CHECKPOINT_MISSING,
                "signed point(s) "
                "held by the external sink are missing from the database: its "
                "rows were deleted",
            )
        )


def _grouped(seqs: Sequence[int | None], kind: FindingKind, text: str) -> Finding:
    """One finding for many points (a rewrite forges or drops them by the thousand), at the
    first seq, naming a few."""
    known = sorted(s for s in seqs if s is not None)
    listed = ", ".join(str(s) for s in known[:5]) + (", …" if len(known) > 5 else "")
    return Finding(
        known[0] if known else None,
        kind,
        f"{len(seqs)} {text}" + (f" (seq {listed})" if known else ""),
    )


def _since_last_time(sink: Sequence[SinkLine], lines: int, digest: str) -> list[Finding]:
    if lines > len(sink):
        return [
            Finding(
                None,
                FindingKind.SINK_TRUNCATED,
                f"the sink held {lines} lines when last "
                f"verified and now holds {len(sink)}: lines were removed from its end",
            )
        ]
    if lines and sink[lines - 1].digest != digest:
        return [
            Finding(
                None,
                FindingKind.SINK_REWRITTEN,
                f"line {lines} of the sink is not the line "
                "verified last time: the file was rewritten",
            )
        ]
    return []


def _seq_of(signed: SignedCheckpoint) -> int | None:
    try:
        return signed.parsed().seq
    except ValidationError:
        return None
