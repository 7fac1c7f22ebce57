"""Legal holds and the prune plan on real Postgres; rows leave only under a tombstone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from proctor.audit.checkpoints import Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog
from proctor.stores.audit_retention import (
    PrunePlan,
    active_holds,
    insert_hold,
    mark_released,
    plan_prune,
    remove_prefix,
)


async def test_a_hold_is_active_until_released_once(audit: AuditLog) -> None:
    async with audit.pool.acquire() as conn:
        first = await insert_hold(conn, "litigation", "counsel@example.com")
        second = await insert_hold(conn, "regulator", "dpo@example.com")
        assert [h.hold_id for h in await active_holds(conn)] == [first, second]

        assert await mark_released(conn, first, "counsel@example.com")
        assert not await mark_released(conn, first, "counsel@example.com")
        assert not await mark_released(conn, 999_999, "counsel@example.com")
        (left,) = await active_holds(conn)
    assert (left.hold_id, left.reason, left.placed_by) == (second, "regulator", "dpo@example.com")


async def test_the_plan_stops_at_the_newest_checkpoint_before_a_young_row(
    audit: AuditLog, tmp_path: Path
) -> None:
    assert await plan_prune(audit.pool, datetime.now(UTC)) == PrunePlan(0, 0, 0)
    await audit.append_many(
        [AuditEvent(idempotency_key=f"k{i}", event_type="t", payload={}) for i in range(7)]
    )
    await Checkpointer(
        audit, LedgerKeys.generate(), DirectorySink(tmp_path), every_rows=3
    ).catch_up()  # checkpoints at 3, 6, 7

    assert await plan_prune(audit.pool, datetime.now(UTC) + timedelta(seconds=1)) == PrunePlan(
        7, 7, 0
    )
    assert await plan_prune(audit.pool, datetime.now(UTC) - timedelta(days=1)) == PrunePlan(0, 0, 0)


async def test_no_row_goes_without_a_tombstone(audit: AuditLog) -> None:
    await audit.append(AuditEvent(idempotency_key="k", event_type="t", payload={}))
    async with audit.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no tombstone"):
            await remove_prefix(conn, 1)
    assert await audit.row_at(1) is not None
