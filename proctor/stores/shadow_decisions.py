"""Reading the shadow decisions back from the audit log, counted (for `policy shadow-report`)."""

from __future__ import annotations

from datetime import datetime

from proctor.models import Effect, Frozen
from proctor.stores.connection import Queryable


class ShadowCount(Frozen):
    """How many requests since then one shadow rule met with these two effects."""

    rule: str
    enforced: Effect
    shadow: Effect
    agree: bool
    count: int


async def shadow_counts(
    db: Queryable, event_type: str, since: datetime | None
) -> list[ShadowCount]:
    """Every (shadow rule, enforced effect, shadow effect) in rows of `event_type` recorded
    since `since` (all time if None), counted, by rule."""
    records = await db.fetch(
        "SELECT p->>'rule' AS rule, p#>>'{enforced,effect}' AS enforced,"
        " p#>>'{shadow,effect}' AS shadow, (p->>'agree')::boolean AS agree, count(*) AS count"
        " FROM (SELECT payload::jsonb AS p FROM audit_log WHERE event_type = $2"
        " AND ($1::timestamptz IS NULL OR recorded_at >= $1)) shadows"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 4, 2, 3",
        since,
        event_type,
    )
    return [ShadowCount.model_validate(dict(record)) for record in records]
