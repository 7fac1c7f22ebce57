"""Reading the audit log by what people ask about: agent, action, effect, actor, time, workflow.

Paged by seq (keyset), so a page is stable while rows are appended and any size is cheap.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from proctor.audit.chain import format_time
from proctor.audit.redaction import Revealer
from proctor.stores.audit_log import COLUMNS, row_of


class AuditFilter(BaseModel):
    """Every field narrows; `action` accepts a trailing `*` (prefix match)."""

    model_config = ConfigDict(extra="forbid")

    agent: str | None = None
    action: str | None = None
    effect: Literal["allow", "deny", "escalate"] | None = None
    actor: str | None = None
    event_type: str | None = None
    workflow_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=10_000)


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


def _where(query: AuditFilter) -> tuple[str, list[object]]:
    clauses = ["seq > $1"]
    args: list[object] = [query.after_seq]

    def add(sql: str, value: object) -> None:
        args.append(value)
        clauses.append(sql.replace("?", f"${len(args)}"))

    if query.agent:
        add("agent_id = ?", query.agent)
    if query.action:
        if query.action.endswith("*"):
            escaped = (
                query.action[:-1].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            )
            add("action LIKE ?", escaped + "%")
        else:
            add("action = ?", query.action)
    if query.effect:
        add("event_type = 'decided' AND (payload::jsonb #>> '{decision,effect}') = ?", query.effect)
    if query.actor:
        add("actor = ?", query.actor)
    if query.event_type:
        add("event_type = ?", query.event_type)
    if query.workflow_id:
        add("workflow_id = ?", query.workflow_id)
    if query.since:
        add("recorded_at >= ?", query.since)
    if query.until:
        add("recorded_at < ?", query.until)
    return " AND ".join(clauses), args


async def query_audit(
    pool: asyncpg.Pool, query: AuditFilter, revealer: Revealer | None = None
) -> AuditPage:
    """One page of matching rows, oldest first; erasable fields revealed when a key allows."""
    where, args = _where(query)
    records = await pool.fetch(
        f"SELECT {COLUMNS} FROM audit_log WHERE {where} ORDER BY seq LIMIT {query.limit + 1}", *args
    )
    more = len(records) > query.limit
    entries = []
    for record in records[: query.limit]:
        row = row_of(record)
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
