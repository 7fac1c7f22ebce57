"""What an operator does to one governed run: see how it stands or how it ended, cancel it.

Where a run stands comes from Temporal's own record of it (describe), not from the workflow's
query: a query to a terminated workflow still answers from its last state ("awaiting
approval"). How a closed run ended comes from the ledger's outcome row for that run, which
the workflow writes, or the worker's reconciler for runs ended outside Proctor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from proctor.approvals.endings import ending_of_row, run_outcome, without_outcome
from proctor.audit.chain import ChainRow
from proctor.contract import (
    CANCEL_SIGNAL,
    GOVERNED_ACTION_WORKFLOW,
    PROGRESS_QUERY,
    STATUS_ATTRIBUTE,
)
from proctor.errors import ConflictError, NotFoundError
from proctor.models import CancelRequest, Progress, Stage
from proctor.stores.audit_log import AuditLog

CANCEL_WAIT_SECONDS = 30.0
REFUSAL_SETTLE_SECONDS = 2.0
"""An action still executing this long after the cancel was sent has refused it."""
QUERY_TIMEOUT = timedelta(seconds=5)
_EXECUTING = (Stage.EXECUTING.value, Stage.AWAITING_EXECUTION.value)


class UnknownWorkflow(NotFoundError):
    """No workflow with this id (in this namespace)."""


class NotCancellable(ConflictError):
    """The run cannot be cancelled: closed already, or not a governed action."""


@dataclass(frozen=True)
class RunState:
    workflow_id: str
    run_id: str
    workflow_type: str
    status: WorkflowExecutionStatus
    stage: str | None
    """Proctor's stage search attribute, as the run last set it."""
    ending: str | None
    """How it ended: its outcome row (written before the workflow lingers to update its Slack
    messages), else Temporal's close status; None while undecided."""
    rows: tuple[ChainRow, ...]
    """Its workflow id's audit rows."""

    @property
    def running(self) -> bool:
        return self.status is WorkflowExecutionStatus.RUNNING


async def run_state(temporal: Client, pool: asyncpg.Pool, workflow_id: str) -> RunState:
    """The current run of `workflow_id` as Temporal records it, with its ending if closed."""
    try:
        described = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise UnknownWorkflow(
                f"no workflow {workflow_id!r} in Temporal namespace {temporal.namespace!r}"
            ) from exc
        raise
    rows = tuple(await AuditLog(pool).for_workflow(workflow_id))
    status = described.status or WorkflowExecutionStatus.RUNNING
    row = run_outcome(rows, workflow_id, described.run_id)
    ending = ending_of_row(row) if row is not None else None
    if ending is None and status is not WorkflowExecutionStatus.RUNNING:
        ending = without_outcome(status)
    return RunState(
        workflow_id=workflow_id,
        run_id=described.run_id,
        workflow_type=described.workflow_type,
        status=status,
        stage=described.typed_search_attributes.get(STATUS_ATTRIBUTE),
        ending=ending,
        rows=rows,
    )


async def progress_of(temporal: Client, workflow_id: str) -> Progress | None:
    """The workflow's own account (votes, pending request), or None if no worker answers it
    (or the worker cannot: e.g. a run it can no longer replay)."""
    try:
        progress: Progress = await temporal.get_workflow_handle(workflow_id).query(
            PROGRESS_QUERY, result_type=Progress, rpc_timeout=QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return None
    return progress


@dataclass(frozen=True)
class CancelResult:
    state: RunState
    """The run after the wait: ended, or still undecided."""
    refused: bool
    """Still executing: the workflow refuses a cancel once the action runs."""

    @property
    def cancelled(self) -> bool:
        return (self.state.ending or "").startswith("cancelled")


async def cancel_action(
    temporal: Client,
    pool: asyncpg.Pool,
    workflow_id: str,
    request: CancelRequest,
    *,
    wait_seconds: float = CANCEL_WAIT_SECONDS,
    poll_seconds: float = 0.25,
) -> CancelResult:
    """Ask the workflow to stop before it executes, then wait (bounded) for its outcome.
    Raises UnknownWorkflow, or NotCancellable for a closed run or another workflow type."""
    before = await run_state(temporal, pool, workflow_id)
    if before.ending is not None:
        raise NotCancellable(f"{workflow_id} already ended: {before.ending}")
    if before.workflow_type != GOVERNED_ACTION_WORKFLOW:
        raise NotCancellable(
            f"{workflow_id} is a {before.workflow_type}: `proctor cancel` "
            "stops governed actions only"
        )
    handle = temporal.get_workflow_handle(workflow_id, run_id=before.run_id)
    await handle.signal(CANCEL_SIGNAL, request)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    while True:
        state = await run_state(temporal, pool, workflow_id)
        elapsed = loop.time() - sent
        if state.ending is not None or elapsed >= wait_seconds:
            return CancelResult(state, refused=False)
        if elapsed >= REFUSAL_SETTLE_SECONDS and await _executing(temporal, state):
            return CancelResult(state, refused=True)
        await asyncio.sleep(poll_seconds)


async def _executing(temporal: Client, state: RunState) -> bool:
    progress = await progress_of(temporal, state.workflow_id)
    stage = progress.stage.value if progress is not None else state.stage
    return stage in _EXECUTING
