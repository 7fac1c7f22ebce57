"""Searching the ledger on real Postgres: filters narrow, pages follow seq, text is literal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog
from proctor.stores.audit_search import (
    AuditFilter,
    containing_any,
    count_containing,
    matching,
)


def event(key: str, action: str, **fields: object) -> AuditEvent:
    return AuditEvent.model_validate(
        {"idempotency_key": key, "event_type": "decided", "action": action, "payload": {}} | fields
    )


async def test_filters_narrow_and_pages_follow_seq(audit: AuditLog) -> None:
    await audit.append_many(
        [
            event("1", "refund_small", agent_id="ann", payload={"decision": {"effect": "allow"}}),
            event("2", "refundXsmall", agent_id="ann"),
            event("3", "refund_large", agent_id="bob", payload={"decision": {"effect": "deny"}}),
            event("4", "read", agent_id="ann", event_type="vote"),
        ]
    )

    async def seqs(**narrowing: object) -> list[int]:
        rows, _ = await matching(audit.pool, AuditFilter.model_validate(narrowing))
        return [row.seq for row in rows]

    assert await seqs(action="refund_*") == [1, 3]  # `_` is a character, not a wildcard
    assert await seqs(agent="ann") == [1, 2, 4]
    assert await seqs(effect="deny") == [3]
    assert await seqs(event_type="vote", agent="ann") == [4]
    assert await seqs(until=datetime.now(UTC) - timedelta(days=1)) == []

    page, more = await matching(audit.pool, AuditFilter(limit=3))
    assert [r.seq for r in page] == [1, 2, 3] and more
    rest, more = await matching(audit.pool, AuditFilter(after_seq=page[-1].seq, limit=3))
    assert [r.seq for r in rest] == [4] and not more


async def test_payload_fragments_match_literally(audit: AuditLog) -> None:
    await audit.append_many(
        [
            event("1", "a", payload={"note": "[redacted:email:ab12]"}),
            event("2", "a", payload={"note": "100% sure"}),
            event("3", "a", payload={"note": "1000 sure"}),
            event("4", "a", payload={"subject": "ab12"}),
        ]
    )

    found = await containing_any(audit.pool, [":ab12]", "100% "], limit=10)
    assert [row.seq for row in found] == [1, 2]
    assert [r.seq for r in await containing_any(audit.pool, [":ab12]", "100% "], limit=1)] == [1]
    assert await count_containing(audit.pool, '"subject":"ab12"') == 1
    assert await count_containing(audit.pool, "_") == 0
