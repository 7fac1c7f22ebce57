"""Finding audit rows by what people ask about: agent, action, effect, actor, time, workflow,
or a piece of the stored payload text (a redaction marker, a data subject's reference).

Paged by seq (keyset), so a page is stable while rows are appended and any size is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from proctor.audit.chain import ChainRow
from proctor.stores.audit_log import COLUMNS, row_of
from proctor.stores.connection import Queryable


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


def _like_literal(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself (backslash is LIKE's escape)."""
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def _where(query: AuditFilter) -> tuple[str, list[object]]:
    """The WHERE clause of `query` and its arguments: the seq bound, and one condition per
    field given."""
    by_action: tuple[str, str | None] = ("action = ?", query.action)
    if query.action and query.action.endswith("*"):
        by_action = ("action LIKE ?", _like_literal(query.action[:-1]) + "%")
    optional: tuple[tuple[str, object], ...] = (
        ("agent_id = ?", query.agent),
        by_action,
        ("event_type = 'decided' AND (payload::jsonb #>> '{decision,effect}') = ?", query.effect),
        ("actor = ?", query.actor),
        ("event_type = ?", query.event_type),
        ("workflow_id = ?", query.workflow_id),
        ("recorded_at >= ?", query.since),
        ("recorded_at < ?", query.until),
    )
    clauses: list[str] = ["seq > $1"]
    args: list[object] = [query.after_seq]
    for condition, value in optional:
        if value:
            args.append(value)
            clauses.append(condition.replace("?", f"${len(args)}"))
    return " AND ".join(clauses), args


async def matching(db: Queryable, query: AuditFilter) -> tuple[list[ChainRow], bool]:
    """One page of matching rows, oldest first, and whether more match after it."""
    where, args = _where(query)
    records = await db.fetch(
        f"SELECT {COLUMNS} FROM audit_log WHERE {where} ORDER BY seq LIMIT {query.limit + 1}", *args
    )
    return [row_of(r) for r in records[: query.limit]], len(records) > query.limit


async def containing_any(db: Queryable, fragments: Sequence[str], limit: int) -> list[ChainRow]:
    """Rows whose stored payload text contains any of `fragments`, oldest first."""
    records = await db.fetch(
        f"SELECT {COLUMNS} FROM audit_log WHERE payload LIKE ANY($1::text[]) ORDER BY seq LIMIT $2",
        [f"%{_like_literal(fragment)}%" for fragment in fragments],
        limit,
    )
    return [row_of(r) for r in records]


async def count_containing(db: Queryable, fragment: str) -> int:
    """How many rows' stored payload text contains `fragment`."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE payload LIKE $1", f"%{_like_literal(fragment)}%"
    )
    return count
