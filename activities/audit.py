"""record_audit / record_outcome: every workflow step lands in the hash chain exactly once."""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from proctor.audit.store import (
    AuditLog,
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

    @activity.defn(name=RECORD_OUTCOME)
    async def record_outcome(self, record: OutcomeRecord) -> AuditReceipt:
        """The outcome row and the trust change commit together, or neither does."""
        try:
            async with self.audit.pool.acquire() as conn, conn.transaction():
                await lock_chain(conn)
                found = await existing_receipt(conn, record.event)
                if found is not None:
                    return found
                if record.trust is not None:
                    scores = await adjust_trust(conn, record.trust.agent_id, record.trust.delta)
                    if scores is not None:
                        await append_locked(conn, AuditEvent(
                            idempotency_key=f"{record.event.idempotency_key}:trust",
                            event_type="trust_changed",
                            workflow_id=record.event.workflow_id,
                            agent_id=record.trust.agent_id,
                            action=record.event.action,
                            actor="proctor",
                            payload={"old_score": scores[0], "new_score": scores[1],
                                     "delta": record.trust.delta, "cause": record.trust.cause},
                        ))
                return await append_locked(conn, record.event)
        except _PERMANENT as exc:
            raise ApplicationError(f"audit append refused: {exc}", non_retryable=True) from exc
