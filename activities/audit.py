"""record_audit / record_outcome: every workflow step lands in the hash chain exactly once."""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from proctor.audit.store import (
    AuditLog,
    Connection,
    IdempotencyConflict,
    append_locked,
    existing_receipt,
    lock_chain,
)
from proctor.contract import RECORD_AUDIT, RECORD_OUTCOME
from proctor.models import AuditEvent, AuditReceipt, OutcomeRecord
from proctor.stores.agents import adjust_trust

# Errors a retry cannot fix: fail the step at once (the workflow then does not execute).
_PERMANENT = (IdempotencyConflict, asyncpg.InsufficientPrivilegeError,
              asyncpg.UndefinedTableError)


class AuditActivities:
    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    @activity.defn(name=RECORD_AUDIT)
    async def record_audit(self, event: AuditEvent) -> AuditReceipt:
        try:
            return await self.audit.append(event)
        except _PERMANENT as exc:
            raise ApplicationError(f"audit append refused: {exc}", non_retryable=True) from exc

    async def _apply_trust(self, conn: Connection, record: OutcomeRecord) -> None:
        """The trust change and its audit rows, inside the outcome's transaction."""
        change = record.trust
        assert change is not None
        update = await adjust_trust(conn, change)
        if update is None:
            return

        def event(suffix: str, event_type: str, payload: dict[str, object]) -> AuditEvent:
            return AuditEvent(
                idempotency_key=f"{record.event.idempotency_key}:{suffix}",
                event_type=event_type, workflow_id=record.event.workflow_id,
                agent_id=change.agent_id, action=record.event.action, actor="proctor",
                payload=payload)

        await append_locked(conn, event("trust", "trust_changed", {
            "old_score": update.old_score, "new_score": update.new_score,
            "delta": change.delta, "cause": change.cause,
            "autonomy_blocked": update.autonomy_blocked}))
        if update.suspended:
            await append_locked(conn, event("suspended", "agent_suspended", {
                "reason": "trust score reached 0", "cause": change.cause}))

    @activity.defn(name=RECORD_OUTCOME)
    async def record_outcome(self, record: OutcomeRecord) -> AuditReceipt:
        """The outcome row and the trust change commit together, or neither does."""
        try:
            event = await self.audit.protect(record.event)
            async with self.audit.pool.acquire() as conn, conn.transaction():
                await lock_chain(conn)
                found = await existing_receipt(conn, event)
                if found is not None:
                    return found
                if record.trust is not None:
                    await self._apply_trust(conn, record)
                return await append_locked(conn, event)
        except _PERMANENT as exc:
            raise ApplicationError(f"audit append refused: {exc}", non_retryable=True) from exc
