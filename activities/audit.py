"""record_audit / record_outcome: every workflow step lands in the hash chain exactly once.

Also where the metrics of governance are counted: a fact is counted once it is durable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from proctor.contract import RECORD_AUDIT, RECORD_OUTCOME
from proctor.metrics import (
    AUDIT_APPEND,
    AUDIT_APPEND_FAILURES,
    DECISIONS,
    OUTCOMES,
    TIME_TO_DECISION,
    TRUST_SUSPENSIONS,
)
from proctor.models import AuditEvent, AuditReceipt, OutcomeRecord
from proctor.stores.agents import adjust_trust
from proctor.stores.audit_log import (
    AuditLog,
    IdempotencyConflict,
    append_locked,
    existing_receipt,
    lock_chain,
)
from proctor.stores.connection import Connection

log = logging.getLogger(__name__)

# Errors a retry cannot fix: fail the step at once (the workflow then does not execute).
_PERMANENT = (IdempotencyConflict, asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedTableError)


@asynccontextmanager
async def _timed(kind: str) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        AUDIT_APPEND_FAILURES.inc()
        raise
    AUDIT_APPEND.labels(kind=kind).observe(time.perf_counter() - started)


def _count_decision(event: AuditEvent) -> None:
    if event.event_type == "identity_refused":
        DECISIONS.labels(effect="deny").inc()
    elif event.event_type == "decided":
        decision = event.payload.get("decision")
        effect = decision.get("effect") if isinstance(decision, dict) else None
        DECISIONS.labels(effect=str(effect or "unknown")).inc()
        activity.logger.info(
            "decided %s by rule %s",
            effect,
            decision.get("rule_id") if isinstance(decision, dict) else None,
        )


class AuditActivities:
    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._observing: set[asyncio.Task[None]] = set()

    @activity.defn(name=RECORD_AUDIT)
    async def record_audit(self, event: AuditEvent) -> AuditReceipt:
        try:
            async with _timed("step"):
                receipt = await self.audit.append(event)
        except _PERMANENT as exc:
            raise ApplicationError(f"audit append refused: {exc}", non_retryable=True) from exc
        _count_decision(event)
        return receipt

    async def _time_to_decision(self, workflow_id: str, status: str) -> None:
        """From the escalation to the deciding vote (or the timeout), read back from the
        ledger after the outcome is written; off the action's path."""
        rows = await self.audit.for_workflow(
            workflow_id, event_types=("escalated", "vote", "approval_timed_out")
        )
        escalated = next((r.recorded_at for r in rows if r.event_type == "escalated"), None)
        if escalated is None:
            return
        ended = [
            r.recorded_at
            for r in rows
            if r.event_type == "approval_timed_out"
            or (r.event_type == "vote" and json.loads(r.payload).get("accepted"))
        ]
        decided: datetime = ended[-1] if ended else datetime.now(UTC)
        TIME_TO_DECISION.labels(outcome=status).observe(
            max((decided - escalated).total_seconds(), 0.0)
        )

    def _observe_later(self, workflow_id: str | None, status: str) -> None:
        if workflow_id is None:
            return
        task = asyncio.create_task(self._time_to_decision(workflow_id, status))
        self._observing.add(task)
        task.add_done_callback(self._observed)

    def _observed(self, task: asyncio.Task[None]) -> None:
        self._observing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("time to decision not observed: %s", task.exception())

    async def _apply_trust(self, conn: Connection, record: OutcomeRecord) -> bool:
        """The trust change and its audit rows, inside the outcome's transaction; True if it
        suspended the agent."""
        change = record.trust
        assert change is not None
        update = await adjust_trust(conn, change)
        if update is None:
            return False

        def event(suffix: str, event_type: str, payload: dict[str, object]) -> AuditEvent:
            return AuditEvent(
                idempotency_key=f"{record.event.idempotency_key}:{suffix}",
                event_type=event_type,
                workflow_id=record.event.workflow_id,
                agent_id=change.agent_id,
                action=record.event.action,
                actor="proctor",
                payload=payload,
            )

        await append_locked(
            conn,
            event(
                "trust",
                "trust_changed",
                {
                    "old_score": update.old_score,
                    "new_score": update.new_score,
                    "delta": change.delta,
                    "cause": change.cause,
                    "autonomy_blocked": update.autonomy_blocked,
                },
            ),
        )
        if update.suspended:
            await append_locked(
                conn,
                event(
                    "suspended",
                    "agent_suspended",
                    {"reason": "trust score reached 0", "cause": change.cause},
                ),
            )
        return update.suspended

    @activity.defn(name=RECORD_OUTCOME)
    async def record_outcome(self, record: OutcomeRecord) -> AuditReceipt:
        """The outcome row and the trust change commit together, or neither does."""
        suspended = False
        try:
            event = await self.audit.protect(record.event)
            async with _timed("outcome"), self.audit.pool.acquire() as conn, conn.transaction():
                await lock_chain(conn)
                found = await existing_receipt(conn, event)
                if found is not None:
                    return found
                if record.trust is not None:
                    suspended = await self._apply_trust(conn, record)
                receipt = await append_locked(conn, event)
        except _PERMANENT as exc:
            raise ApplicationError(f"audit append refused: {exc}", non_retryable=True) from exc
        status = str(record.event.payload.get("status", "unknown"))
        OUTCOMES.labels(status=status).inc()
        if suspended:
            TRUST_SUSPENSIONS.inc()
        activity.logger.info("action %s (seq %d)", status, receipt.seq)
        if status in ("rejected", "timed_out") or record.event.payload.get("approvals"):
            self._observe_later(record.event.workflow_id, status)  # it waited for humans
        return receipt
