"""Chain math, pure: how an entry is hashed and how a run of rows is checked.

The hash covers the whole canonical entry, its position (`seq`) and `prev_hash` included, so
editing, deleting, swapping or inserting any row breaks the chain at that row.

The entry's canonical text is built from the payload's stored canonical text and the other
fields each encoded by `rfc8785`, keys in RFC 8785 order: byte for byte what `rfc8785.dumps` of
the whole entry gives (a property test holds the two together), without re-parsing the payload
on every row. That is what lets verification stream a million rows in seconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785

from proctor.audit.findings import FindingKind

GENESIS_HASH = "0" * 64
_ZERO = timedelta(0)
WITNESS_CHARS = 8
"""Hex characters of a row's content digest kept in external checkpoints (to localise edits)."""


@dataclass(frozen=True)
class ChainRow:
    seq: int
    recorded_at: datetime
    idempotency_key: str
    workflow_id: str | None
    event_type: str
    agent_id: str | None
    action: str | None
    actor: str | None
    payload: str
    prev_hash: str
    hash: str
    recorded_text: str | None = None
    """`recorded_at` as hashed, when the database already formatted it (fast verification)."""


def format_time(moment: datetime) -> str:
    """Fixed-width UTC time with microseconds: the same text before and after Postgres."""
    if moment.utcoffset() != _ZERO:
        moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


_PLAIN_ASCII = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII without `"` or `\\`: RFC 8785 writes such a string as itself in quotes."""
_SAFE_INT = 2**53 - 1


def _json(value: str | int | None) -> bytes:
    """RFC 8785 text of one scalar. The library decides every case but the two trivial ones
    (a plain ASCII string, a safe integer), which it would write the same way; a property test
    holds the shortcut to the library."""
    if isinstance(value, str):
        if _PLAIN_ASCII.fullmatch(value):
            return b'"' + value.encode("ascii") + b'"'
    elif isinstance(value, int) and -_SAFE_INT <= value <= _SAFE_INT:
        return str(value).encode("ascii")
    return rfc8785.dumps(value)


@functools.lru_cache(maxsize=4096)
def _json_cached(value: str | None) -> bytes:
    """For the fields that repeat from row to row (event type, agent, action, actor)."""
    return _json(value)


def _content_members(row: ChainRow) -> tuple[bytes, bytes]:
    """The entry's members before and after `prev_hash`/`recorded_at`/`seq`, canonical."""
    head = b"".join(
        (
            b'{"action":',
            _json_cached(row.action),
            b',"actor":',
            _json_cached(row.actor),
            b',"agent_id":',
            _json_cached(row.agent_id),
            b',"event_type":',
            _json_cached(row.event_type),
            b',"idempotency_key":',
            _json(row.idempotency_key),
            b',"payload":',
            row.payload.encode("utf-8"),
        )
    )
    return head, b',"workflow_id":' + _json(row.workflow_id) + b"}"


def entry_bytes(row: ChainRow) -> bytes:
    """RFC 8785 canonical JSON of the whole entry (everything but `hash`)."""
    head, tail = _content_members(row)
    return b"".join(
        (
            head,
            b',"prev_hash":',
            _json(row.prev_hash),
            b',"recorded_at":',
            _json(row.recorded_text or format_time(row.recorded_at)),
            b',"seq":',
            _json(row.seq),
            tail,
        )
    )


def row_hash(row: ChainRow) -> str:
    return hashlib.sha256(entry_bytes(row)).hexdigest()


def sealed(row: ChainRow) -> ChainRow:
    """The row with its `hash` computed (whatever `hash` it carried is ignored)."""
    return replace(row, hash=row_hash(row))


def content_digest(row: ChainRow) -> str:
    """A short digest of what the row says, not where it sits (no seq, prev_hash).

    External checkpoints keep these per row, so a consistently recomputed chain can still be
    compared row by row: an inserted row shifts the sequence, a deleted one closes up, an edited
    one differs in place.
    """
    head, tail = _content_members(row)
    moment = _json(row.recorded_text or format_time(row.recorded_at))
    return hashlib.sha256(head + b',"recorded_at":' + moment + tail).hexdigest()[:WITNESS_CHARS]


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    kind: FindingKind
    """What the break shows, as far as links can tell (witnesses may tell more)."""
    problem: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    last_seq: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


class ChainVerifier:
    """Checks rows in seq order, one at a time, so a table of any size streams through."""

    def __init__(self, start_seq: int = 1, prev_hash: str = GENESIS_HASH) -> None:
        self.expected_seq = start_seq
        self.prev_hash = prev_hash
        self.rows_checked = 0
        self.first_break: ChainBreak | None = None

    def feed(self, row: ChainRow) -> bool:
        """Check one row; False once the chain is broken (later rows are not judged)."""
        if self.first_break is not None:
            return False
        problem = self._problem(row)
        if problem is not None:
            self.first_break = ChainBreak(min(row.seq, self.expected_seq), *problem)
            return False
        self.rows_checked += 1
        self.expected_seq = row.seq + 1
        self.prev_hash = row.hash
        return True

    def feed_records(self, records: Sequence[Any]) -> int:
        """Check raw records (the store's HASHING_COLUMNS) in a tight loop; returns how many
        were accepted. The first failing one goes through `feed` for a precise diagnosis."""
        if self.first_break is not None:
            return 0
        expected, prev_hash = self.expected_seq, self.prev_hash
        sha256, plain, cached = hashlib.sha256, _json, _json_cached
        accepted = 0
        for record in records:
            seq, key, workflow, event_type, agent, action, actor, payload, prev, digest, when = (
                record[0],
                record[2],
                record[3],
                record[4],
                record[5],
                record[6],
                record[7],
                record[8],
                record[9],
                record[10],
                record[11],
            )
            if seq != expected or prev != prev_hash or when is None or seq > _SAFE_INT:
                break
            # prev_hash is a hex digest this loop computed, `when` is Postgres' to_char of a
            # timestamp and seq a safe integer: RFC 8785 writes each as is (quoted if text).
            entry = b"".join(
                (
                    b'{"action":',
                    cached(action),
                    b',"actor":',
                    cached(actor),
                    b',"agent_id":',
                    cached(agent),
                    b',"event_type":',
                    cached(event_type),
                    b',"idempotency_key":',
                    plain(key),
                    b',"payload":',
                    payload.encode(),
                    b',"prev_hash":"',
                    prev_hash.encode(),
                    b'","recorded_at":"',
                    when.encode(),
                    b'","seq":',
                    str(seq).encode(),
                    b',"workflow_id":',
                    plain(workflow),
                    b"}",
                )
            )
            if sha256(entry).hexdigest() != digest:
                break
            prev_hash = digest
            expected += 1
            accepted += 1
        self.expected_seq, self.prev_hash = expected, prev_hash
        self.rows_checked += accepted
        if accepted < len(records):
            self.feed(ChainRow(*records[accepted]))
        return accepted

    def _problem(self, row: ChainRow) -> tuple[FindingKind, str] | None:
        if row.seq > self.expected_seq:
            return (
                FindingKind.ROW_DELETED,
                f"rows {self.expected_seq}..{row.seq - 1} are missing (deleted), "
                f"next present row is {row.seq}",
            )
        if row_hash(row) == row.hash:
            if row.prev_hash == self.prev_hash:
                return None
            return (
                FindingKind.LINK_BROKEN,
                "prev_hash does not match the previous row's hash (a row was inserted "
                "here, or the previous row was rewritten)",
            )
        moved_from = _written_at_other_seq(row)
        if moved_from is not None:
            return (
                FindingKind.ROWS_SWAPPED,
                f"the row here was written as seq {moved_from} (rows swapped or reordered)",
            )
        if not _is_json(row.payload):
            return FindingKind.CONTENT_EDITED, "payload is not JSON (content edited)"
        return FindingKind.CONTENT_EDITED, "hash does not match the row's content (content edited)"

    def report(self) -> ChainReport:
        return ChainReport(
            self.rows_checked, self.expected_seq - 1, self.prev_hash, self.first_break
        )


def _written_at_other_seq(row: ChainRow, reach: int = 8) -> int | None:
    """The nearby seq under which this row's content hashes right, if any (a moved row)."""
    for offset in range(1, reach + 1):
        for seq in (row.seq + offset, row.seq - offset):
            if seq >= 1 and row_hash(_at(row, seq)) == row.hash:
                return seq
    return None


def _at(row: ChainRow, seq: int) -> ChainRow:
    return replace(row, seq=seq)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def verify_rows(rows: Iterable[ChainRow]) -> ChainReport:
    verifier = ChainVerifier()
    for row in rows:
        if not verifier.feed(row):
            break
    return verifier.report()
