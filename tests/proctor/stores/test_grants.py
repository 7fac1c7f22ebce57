"""Standing grants on real Postgres: made once per id, used at most `max_uses` times however
many runs race for them, a retried run counted once, ended by expiry and revocation, never
listed for another agent, and every change audited on a chain that still verifies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from proctor.models import (
    AuditEvent,
    GrantDraft,
    StandingGrant,
)
from proctor.signing import verify_request
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import LIVE_FOR, GrantConflict, GrantStore
from tests.helpers.grants import AGENT_KEY, grant_draft


def grant_event(key: str, event_type: str, grant_id: str) -> AuditEvent:
    return AuditEvent(
        idempotency_key=key,
        event_type=event_type,
        agent_id="agent-refunds",
        action="refund",
        actor="test",
        payload={"grant_id": grant_id},
    )


async def made(store: GrantStore, draft: GrantDraft) -> StandingGrant:
    await store.make(draft, grant_event(f"{draft.grant_id}:made", "grant_made", draft.grant_id))
    grant = await store.get(draft.grant_id)
    assert grant is not None
    return grant


async def use(store: GrantStore, grant_id: str, run_id: str | None = None) -> bool:
    run = run_id or uuid.uuid4().hex
    return await store.use(
        grant_id,
        workflow_id=f"action-{run}",
        run_id=run,
        event=grant_event(f"{grant_id}:{run}:used", "grant_used", grant_id),
    )


async def revoke(store: GrantStore, grant_id: str) -> StandingGrant | None:
    return await store.revoke(
        grant_id,
        by="bob@example.com",
        reason="done",
        event=grant_event(f"{grant_id}:revoked", "grant_revoked", grant_id),
    )


async def event_types(audit: AuditLog) -> list[str]:
    return [row.event_type async for row in audit.rows()]


async def test_a_grant_is_made_once_and_kept_as_signed(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    draft = grant_draft(max_uses=3, when="params.amount <= 600", approvers=("a@x.io", "b@x.io"))
    event = grant_event("made", "grant_made", draft.grant_id)

    first = await store.make(draft, event)
    again = await store.make(draft, event)

    assert again == first
    assert await event_types(audit) == ["grant_made"]
    grant = await store.get(draft.grant_id)
    assert grant is not None
    assert (grant.agent_id, grant.action, grant.rule_id) == ("agent-refunds", "refund", "refunds")
    assert (grant.when, grant.max_uses, grant.uses) == ("params.amount <= 600", 3, 0)
    assert grant.made_by == ("a@x.io", "b@x.io")
    assert grant.expires_at == draft.expires_at
    assert (grant.request, grant.votes) == (draft.request, draft.votes)
    assert verify_request(grant.request, AGENT_KEY.public_key_pem)
    assert await store.get("g-none") is None


async def test_the_same_id_from_another_run_is_refused(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    draft = grant_draft()
    await made(store, draft)

    other = draft.model_copy(update={"run_id": "another-run"})
    with pytest.raises(GrantConflict):
        await store.make(other, grant_event("other", "grant_made", draft.grant_id))
    assert await event_types(audit) == ["grant_made"]


async def test_uses_count_up_to_the_maximum(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    grant = await made(store, grant_draft(max_uses=2))

    assert [await use(store, grant.grant_id) for _ in range(3)] == [True, True, False]
    assert (await store.get(grant.grant_id) or grant).uses == 2
    assert await store.live_for("agent-refunds", "refund", datetime.now(UTC)) == []
    assert await event_types(audit) == ["grant_made", "grant_used", "grant_used"]


async def test_concurrent_uses_never_exceed_the_maximum(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    grant = await made(store, grant_draft(max_uses=3))

    results = await asyncio.gather(*(use(store, grant.grant_id) for _ in range(10)))

    assert sum(results) == 3
    assert (await store.get(grant.grant_id) or grant).uses == 3
    assert (await event_types(audit)).count("grant_used") == 3


async def test_a_retried_run_counts_once(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    grant = await made(store, grant_draft(max_uses=1))

    results = await asyncio.gather(*(use(store, grant.grant_id, run_id="run-1") for _ in range(4)))

    assert results == [True] * 4
    assert (await store.get(grant.grant_id) or grant).uses == 1
    assert await use(store, grant.grant_id, run_id="run-2") is False
    assert await use(store, grant.grant_id, run_id="run-1") is True
    assert (await event_types(audit)).count("grant_used") == 1


async def test_an_unlimited_grant_keeps_counting(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    grant = await made(store, grant_draft())

    assert all([await use(store, grant.grant_id) for _ in range(5)])
    assert (await store.get(grant.grant_id) or grant).uses == 5


async def test_an_expired_grant_is_neither_live_nor_usable(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    past = await made(store, grant_draft(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    soon = await made(store, grant_draft(expires_at=datetime.now(UTC) + timedelta(minutes=5)))

    assert await use(store, past.grant_id) is False
    now = datetime.now(UTC)
    live = await store.live_for("agent-refunds", "refund", now)
    assert [g.grant_id for g in live] == [soon.grant_id]
    later = now + timedelta(minutes=10)
    assert await store.live_for("agent-refunds", "refund", later) == []
    assert [g.grant_id for g in await store.list()] == [soon.grant_id]
    assert await store.list(at=later) == []
    ended = await store.list(include_ended=True)
    assert {g.grant_id for g in ended} == {past.grant_id, soon.grant_id}


async def test_live_grants_are_ordered_by_expiry(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    hours = [3, 1, 2]
    grants = [
        await made(store, grant_draft(expires_at=datetime.now(UTC) + timedelta(hours=h)))
        for h in hours
    ]

    live = await store.live_for("agent-refunds", "refund", datetime.now(UTC))

    assert [g.grant_id for g in live] == [
        grants[1].grant_id,
        grants[2].grant_id,
        grants[0].grant_id,
    ]


async def test_another_agent_or_action_never_sees_the_grant(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    mine = await made(store, grant_draft())
    theirs = await made(store, grant_draft(agent_id="agent-other"))
    now = datetime.now(UTC)

    assert [g.grant_id for g in await store.live_for("agent-refunds", "refund", now)] == [
        mine.grant_id
    ]
    assert await store.live_for("agent-refunds", "pay", now) == []
    assert [g.grant_id for g in await store.list(agent_id="agent-other")] == [theirs.grant_id]
    assert [g.grant_id for g in await store.list(agent_id="agent-none")] == []


async def test_a_revoked_grant_ends_once(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    grant = await made(store, grant_draft())
    await use(store, grant.grant_id, run_id="run-1")

    revoked = await revoke(store, grant.grant_id)
    again = await store.revoke(
        grant.grant_id,
        by="carol@example.com",
        reason="again",
        event=grant_event("again", "grant_revoked", grant.grant_id),
    )

    assert revoked is not None
    assert (revoked.revoked_by, revoked.revoke_reason) == ("bob@example.com", "done")
    assert revoked.revoked_at is not None
    assert again == revoked
    assert await use(store, grant.grant_id) is False
    assert await use(store, grant.grant_id, run_id="run-1") is True  # a retry of a past use
    assert await store.live_for("agent-refunds", "refund", datetime.now(UTC)) == []
    assert await store.list() == []
    assert await revoke(store, "g-none") is None
    assert await event_types(audit) == ["grant_made", "grant_used", "grant_revoked"]


async def test_grants_of_removed_rules_are_revoked(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    kept = await made(store, grant_draft(rule_id="refunds"))
    gone = await made(store, grant_draft(rule_id="payouts"))
    expired = await made(
        store,
        grant_draft(rule_id="payouts", expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )

    def event_for(grant: StandingGrant) -> AuditEvent:
        return grant_event(f"{grant.grant_id}:swept", "grant_revoked", grant.grant_id)

    swept = await store.revoke_rules_removed(
        {"refunds"}, by="policy", reason="rule removed", event_for=event_for
    )
    again = await store.revoke_rules_removed(
        {"refunds"}, by="policy", reason="rule removed", event_for=event_for
    )

    assert (swept, again) == ([gone.grant_id], [])
    assert (await store.get(gone.grant_id) or gone).revoked_by == "policy"
    assert (await store.get(kept.grant_id) or kept).revoked_at is None
    assert (await store.get(expired.grant_id) or expired).revoked_at is None
    assert (await event_types(audit)).count("grant_revoked") == 1


async def test_every_change_is_audited_on_a_chain_that_verifies(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    grant = await made(store, grant_draft(max_uses=5))
    await asyncio.gather(*(use(store, grant.grant_id) for _ in range(3)))
    await revoke(store, grant.grant_id)

    rows = [row async for row in audit.rows()]

    assert [row.event_type for row in rows] == [
        "grant_made",
        "grant_used",
        "grant_used",
        "grant_used",
        "grant_revoked",
    ]
    assert all(grant.grant_id in row.payload for row in rows)
    report = await audit.verify()
    assert report.intact
    assert report.rows_checked == 5


async def test_the_request_path_reads_the_live_index_in_order(audit: AuditLog) -> None:
    store = GrantStore(audit.pool, audit)
    for _ in range(3):
        await made(store, grant_draft())
    async with audit.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # a tiny table is read whole
        plan = [
            record[0]
            for record in await conn.fetch(
                f"EXPLAIN {LIVE_FOR}", datetime.now(UTC), "agent-refunds", "refund"
            )
        ]

    assert plan[0].startswith("Index Scan using standing_grants_live"), plan
    assert not any("Sort" in line for line in plan), plan
