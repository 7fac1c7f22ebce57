"""Audit rows found by a filter, as entries people read: JSON payloads, UTC times, and the
erasable fields revealed when a subject's key allows (the search itself is the store's).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from proctor.audit.chain import format_time
from proctor.audit.redaction import Revealer
from proctor.stores.audit_search import AuditFilter, matching
from proctor.stores.connection import Queryable

__all__ = ["AuditEntry", "AuditFilter", "AuditPage", "query_audit"]


class AuditEntry(BaseModel):
    seq: int
    recorded_at: str
    event_type: str
    workflow_id: str | None
    agent_id: str | None
    action: str | None
    actor: str | None
    payload: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_after_seq: int | None
    """Pass as `after_seq` for the next page; None on the last page."""


async def query_audit(
    db: Queryable, query: AuditFilter, revealer: Revealer | None = None
) -> AuditPage:
    """One page of matching rows, oldest first; erasable fields revealed when a key allows."""
    rows, more = await matching(db, query)
    entries = []
    for row in rows:
        payload = json.loads(row.payload)
        if revealer is not None:
            payload = await revealer.reveal(payload, row.idempotency_key)
        entries.append(
            AuditEntry(
                seq=row.seq,
                recorded_at=format_time(row.recorded_at),
                event_type=row.event_type,
                workflow_id=row.workflow_id,
                agent_id=row.agent_id,
                action=row.action,
                actor=row.actor,
                payload=payload,
                hash=row.hash,
            )
        )
    return AuditPage(entries=entries, next_after_seq=entries[-1].seq if more and entries else None)
