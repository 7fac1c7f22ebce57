"""The reconciler: a governed run ended outside Proctor still gets its audited outcome.

A workflow terminated or reset in the Temporal UI, timed out, cancelled through Temporal or
failed never writes its own `outcome` row, so the ledger would say it is still waiting. The
worker finds such runs through Temporal visibility (its own task queue only: the ledger is
this deployment's) and appends the missing row under the very key the workflow uses,
`<workflow id>:<run id>:outcome`, under the chain lock and only if that key is absent: a run
that wrote its own outcome is never counted twice, and two workers reconciling at once write
one row. Visibility is eventually consistent, so each pass re-reads a safety margin before the
newest close it has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHistoryEventFilterType,
)
from temporalio.service import RPCError

from proctor.approvals.endings import (
    ENDED_OUTSIDE,
    OUTCOME_EVENT,
    RECONCILER,
    TEMPORAL_STATUS_NAMES,
    legacy_outcome_key,
    outcome_key,
)
from proctor.contract import (
    ACTION_ATTRIBUTE,
    AGENT_ATTRIBUTE,
    GOVERNED_ACTION_WORKFLOW,
    REINSTATEMENT_WORKFLOW,
)
from proctor.metrics import OUTCOMES
from proctor.models import AuditEvent, AuditReceipt
from proctor.stores.audit_log import AuditLog
from proctor.stores.outcomes import OutcomeStore
from proctor.temporal import visibility_literal

log = logging.getLogger(__name__)

WORKFLOW_TYPES = (GOVERNED_ACTION_WORKFLOW, REINSTATEMENT_WORKFLOW)
LEGACY_SKEW = timedelta(seconds=2)
"""A legacy outcome row (key without run id) belongs to a run if written before it closed;
this much clock difference between worker and Temporal server is allowed."""


@dataclass(frozen=True)
class ClosedRun:
    """One run that closed without the workflow finishing its own way."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: WorkflowExecutionStatus
    closed_at: datetime
    agent_id: str | None
    """From the run's search attributes: only used if the ledger has no row of it."""
    action: str | None

    @property
    def key(self) -> str:
        return outcome_key(self.workflow_id, self.run_id)


def closed_runs_query(task_queue: str | None, since: datetime | None) -> str:
    """Runs of governed workflow types that closed abnormally (since `since`)."""
    types = ", ".join(f"'{name}'" for name in WORKFLOW_TYPES)
    statuses = ", ".join(f"'{TEMPORAL_STATUS_NAMES[s]}'" for s in ENDED_OUTSIDE)
    query = f"WorkflowType IN ({types}) AND ExecutionStatus IN ({statuses})"
    if task_queue is not None:
        query += f" AND TaskQueue = {visibility_literal(task_queue)}"
    if since is not None:
        query += f" AND CloseTime >= '{_rfc3339(since)}'"
    return query


def what_temporal_said(
    event: HistoryEvent | None, failure: str | None = None
) -> tuple[str, str | None]:
    """(detail, identity) from a run's close event: the reason and who, where recorded.
    `failure`: a failed run's message decoded by the client's converter (it may be encrypted
    in the event itself)."""
    if event is None:
        return "the run's history is no longer available", None
    if event.HasField("workflow_execution_terminated_event_attributes"):
        terminated = event.workflow_execution_terminated_event_attributes
        return terminated.reason or "terminated (no reason given)", terminated.identity or None
    if event.HasField("workflow_execution_failed_event_attributes"):
        message = failure or event.workflow_execution_failed_event_attributes.failure.message
        return message or "the workflow failed", None
    if event.HasField("workflow_execution_timed_out_event_attributes"):
        return "the workflow's execution timeout passed", None
    if event.HasField("workflow_execution_canceled_event_attributes"):
        return "cancelled through Temporal (a cancellation request, not `proctor cancel`)", None
    return f"closed by {event.event_type}", None


class Reconciler:
    """Finds runs ended outside Proctor and records their outcome; see the module docstring.
    `ledger` is the worker's protected log: the reason text is redacted like any other."""

    def __init__(
        self,
        temporal: Client,
        ledger: AuditLog,
        *,
        task_queue: str | None,
        every_seconds: float = 15.0,
        margin_seconds: float = 300.0,
    ) -> None:
        self.temporal = temporal
        self.ledger = ledger
        self.outcomes = OutcomeStore(ledger.pool)
        self.task_queue = task_queue
        self.every_seconds = every_seconds
        self.margin = timedelta(seconds=margin_seconds)
        self.since: datetime | None = None
        """Where the next pass starts reading (None: everything visibility still holds)."""
        self._settled: dict[tuple[str, str], datetime] = {}
        """Runs inside the re-read margin already known to have their row."""

    async def run(self, stop: asyncio.Event) -> None:
        """A pass at once, then every `every_seconds` until `stop`; trouble is logged and
        retried on the next pass."""
        while not stop.is_set():
            try:
                await self.reconcile()
            except (RPCError, OSError, asyncpg.PostgresError) as exc:
                log.warning("reconciling closed workflows failed this time: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_seconds)

    async def reconcile(self) -> list[AuditReceipt]:
        """One pass; the rows it wrote (none if every closed run has its outcome)."""
        runs = [run async for run in self._closed_runs()]
        fresh = [run for run in runs if (run.workflow_id, run.run_id) not in self._settled]
        accounted = await self._accounted(fresh)
        written: list[AuditReceipt] = []
        for run in fresh:
            if run.key not in accounted:
                receipt = await self._record(run)
                if receipt is not None:
                    written.append(receipt)
            self._settled[(run.workflow_id, run.run_id)] = run.closed_at
        self._advance(runs)
        return written

    async def _closed_runs(self) -> AsyncIterator[ClosedRun]:
        query = closed_runs_query(self.task_queue, self.since)
        async for execution in self.temporal.list_workflows(query, page_size=500):
            run = _closed_run(execution)
            if run is not None:
                yield run

    async def _accounted(self, runs: Sequence[ClosedRun]) -> set[str]:
        """Keys (of `runs`) whose outcome is already in the ledger, in one query. A legacy row
        counts for a run if it was written before the run closed."""
        if not runs:
            return set()
        found = await self.outcomes.recorded_at(
            [k for run in runs for k in (run.key, legacy_outcome_key(run.workflow_id))]
        )
        return {
            run.key
            for run in runs
            if run.key in found
            or (
                legacy_outcome_key(run.workflow_id) in found
                and found[legacy_outcome_key(run.workflow_id)] <= run.closed_at + LEGACY_SKEW
            )
        }

    async def _record(self, run: ClosedRun) -> AuditReceipt | None:
        """Append the run's outcome unless its key is there by now; None if it was."""
        detail, identity = await self._what_temporal_said(run)
        agent_id, action = await self._subject(run)
        payload: dict[str, object] = {
            "status": ENDED_OUTSIDE[run.status],
            "execution_status": TEMPORAL_STATUS_NAMES[run.status],
            "detail": detail,
            "detected_by": RECONCILER,
        }
        if identity:
            payload["identity"] = identity
        event = await self.ledger.protect(
            AuditEvent(
                idempotency_key=run.key,
                event_type=OUTCOME_EVENT,
                workflow_id=run.workflow_id,
                agent_id=agent_id,
                action=action,
                actor="proctor",
                payload=payload,
            )
        )
        receipt = await self.outcomes.append_if_absent(event)
        if receipt is None:
            return None
        if run.workflow_type == GOVERNED_ACTION_WORKFLOW:  # the metric counts actions
            OUTCOMES.labels(status=payload["status"]).inc()
        log.info(
            "%s run %s ended outside Proctor (%s): outcome %s recorded at seq %d",
            run.workflow_id,
            run.run_id,
            payload["execution_status"],
            payload["status"],
            receipt.seq,
        )
        return receipt

    async def _what_temporal_said(self, run: ClosedRun) -> tuple[str, str | None]:
        handle = self.temporal.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        event: HistoryEvent | None = None
        try:
            async for found in handle.fetch_history_events(
                event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
            ):
                event = found
        except RPCError as exc:
            log.info(
                "close event of %s run %s not read: %s", run.workflow_id, run.run_id, exc.message
            )
        failure: str | None = None
        if event is not None and event.HasField("workflow_execution_failed_event_attributes"):
            encoded = HistoryEvent()
            encoded.CopyFrom(event)
            try:
                failure = str(
                    await self.temporal.data_converter.decode_failure(
                        encoded.workflow_execution_failed_event_attributes.failure
                    )
                )
            except Exception as exc:  # undecodable (e.g. a key no longer held): say so
                failure = (
                    f"{event.workflow_execution_failed_event_attributes.failure.message}"
                    f" (details not decodable here: {type(exc).__name__})"
                )
        return what_temporal_said(event, failure)

    async def _subject(self, run: ClosedRun) -> tuple[str | None, str | None]:
        """The agent and action as the workflow recorded them (its verified request), else as
        the run's starter labelled it."""
        subject = await self.outcomes.first_subject(run.workflow_id)
        if subject is not None:
            return subject.agent_id, subject.action
        return run.agent_id, run.action

    def _advance(self, runs: Sequence[ClosedRun]) -> None:
        """Next pass: from the newest close seen, less the margin (never backwards); forget
        settled runs that fell out of that window."""
        if not runs:
            return
        newest = max(run.closed_at for run in runs) - self.margin
        if self.since is None or newest > self.since:
            self.since = newest
        since = self.since
        self._settled = {k: at for k, at in self._settled.items() if at >= since}


def _closed_run(execution: WorkflowExecution) -> ClosedRun | None:
    if execution.status not in ENDED_OUTSIDE or execution.close_time is None:
        return None
    attributes = execution.typed_search_attributes
    return ClosedRun(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        status=execution.status,
        closed_at=execution.close_time,
        agent_id=attributes.get(AGENT_ATTRIBUTE),
        action=attributes.get(ACTION_ATTRIBUTE),
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
