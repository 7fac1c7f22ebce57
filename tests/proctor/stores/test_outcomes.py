"""The reconciler's store on real Postgres: recorded keys and their times, a workflow's
subject, and an outcome appended once however many writers race for its key."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog
from proctor.stores.outcomes import OutcomeStore, Subject


def event(
    key: str, workflow_id: str, agent_id: str | None = None, action: str | None = None
) -> AuditEvent:
    return AuditEvent(
        idempotency_key=key,
        event_type="test",
        workflow_id=workflow_id,
        agent_id=agent_id,
        action=action,
        actor="test",
    )


async def test_recorded_at_finds_only_the_keys_in_the_ledger(pool: asyncpg.Pool) -> None:
    workflow_id = f"action-{uuid.uuid4().hex}"
    present, absent = f"{workflow_id}:a", f"{workflow_id}:b"
    await AuditLog(pool).append(event(present, workflow_id))
    stored = await pool.fetchval(
        "SELECT recorded_at FROM audit_log WHERE idempotency_key = $1", present
    )

    assert await OutcomeStore(pool).recorded_at([present, absent]) == {present: stored}
    assert await OutcomeStore(pool).recorded_at([]) == {}


async def test_the_subject_is_the_first_row_that_names_an_agent(pool: asyncpg.Pool) -> None:
    workflow_id = f"action-{uuid.uuid4().hex}"
    await AuditLog(pool).append_many(
        [
            event(f"{workflow_id}:started", workflow_id),
            event(f"{workflow_id}:verified", workflow_id, agent_id="agent-a", action="pay"),
            event(f"{workflow_id}:later", workflow_id, agent_id="agent-b", action="refund"),
        ]
    )
    store = OutcomeStore(pool)

    assert await store.first_subject(workflow_id) == Subject("agent-a", "pay")
    assert await store.first_subject(f"action-{uuid.uuid4().hex}") is None


async def test_an_outcome_is_appended_once_however_many_write_it(pool: asyncpg.Pool) -> None:
    workflow_id = f"action-{uuid.uuid4().hex}"
    key = f"{workflow_id}:run:outcome"
    writers = [OutcomeStore(pool) for _ in range(5)]

    receipts = await asyncio.gather(
        *(
            w.append_if_absent(event(key, workflow_id, action=f"try-{i}"))
            for i, w in enumerate(writers)
        )
    )

    [written] = [r for r in receipts if r is not None]
    assert receipts.count(None) == 4
    [row] = await AuditLog(pool).for_workflow(workflow_id)
    assert (row.seq, row.hash) == (written.seq, written.hash)
    # A different event under a key already there is not a conflict here: the row stands.
    assert await writers[0].append_if_absent(event(key, workflow_id, action="late")) is None
    assert (await AuditLog(pool).for_workflow(workflow_id)) == [row]
