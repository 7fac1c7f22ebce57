"""Chain math, pure: how an entry is hashed and how a run of rows is checked.

The hash covers the whole canonical entry, its position (`seq`) and `prev_hash` included, so
editing, deleting, swapping or inserting any row breaks the chain at that row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proctor.canonical import canonical_bytes, canonical_text, sha256_hex

GENESIS_HASH = "0" * 64


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


def format_time(moment: datetime) -> str:
    """Fixed-width UTC time with microseconds: the same text before and after Postgres."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    seq: int,
    recorded_at: datetime,
    idempotency_key: str,
    workflow_id: str | None,
    event_type: str,
    agent_id: str | None,
    action: str | None,
    actor: str | None,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    entry = {
        "seq": seq,
        "recorded_at": format_time(recorded_at),
        "idempotency_key": idempotency_key,
        "workflow_id": workflow_id,
        "event_type": event_type,
        "agent_id": agent_id,
        "action": action,
        "actor": actor,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return sha256_hex(canonical_bytes(entry))


def row_hash(row: ChainRow) -> str:
    return entry_hash(
        seq=row.seq, recorded_at=row.recorded_at, idempotency_key=row.idempotency_key,
        workflow_id=row.workflow_id, event_type=row.event_type, agent_id=row.agent_id,
        action=row.action, actor=row.actor, payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
    )


@dataclass(frozen=True)
class ChainBreak:
    seq: int
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
            self.first_break = ChainBreak(min(row.seq, self.expected_seq), problem)
            return False
        self.rows_checked += 1
        self.expected_seq = row.seq + 1
        self.prev_hash = row.hash
        return True

    def _problem(self, row: ChainRow) -> str | None:
        if row.seq > self.expected_seq:
            return (f"rows {self.expected_seq}..{row.seq - 1} are missing (deleted), "
                    f"next present row is {row.seq}")
        if row.prev_hash != self.prev_hash:
            return "prev_hash does not match the previous row's hash (row inserted, swapped or " \
                   "the previous row was rewritten)"
        try:
            payload = json.loads(row.payload)
        except ValueError:
            return "payload is not JSON (content edited)"
        if canonical_text(payload) != row.payload:
            return "payload is not the canonical text that was hashed (content edited)"
        if row_hash(row) != row.hash:
            return "hash does not match the row's content (content edited)"
        return None

    def report(self) -> ChainReport:
        return ChainReport(self.rows_checked, self.expected_seq - 1, self.prev_hash,
                           self.first_break)


def verify_rows(rows: Iterable[ChainRow]) -> ChainReport:
    verifier = ChainVerifier()
    for row in rows:
        if not verifier.feed(row):
            break
    return verifier.report()
