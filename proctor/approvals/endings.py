"""How a governed run ended: the key of its `outcome` row, and the words for it.

A workflow writes its own outcome row; a run ended outside Proctor (terminated or reset in
the Temporal UI, timed out, cancelled through Temporal, failed) gets one from the worker's
reconciler instead. Both write under the same key, `<workflow id>:<run id>:outcome`, so a run
is counted once whoever gets there first. Pure: the reconciler, `approvals show` and
`proctor cancel` all read endings through here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from proctor.audit.chain import ChainRow
from proctor.contract import step_key

OUTCOME_EVENT = "outcome"
RECONCILER = "reconciler"
"""`detected_by` of the rows the reconciler writes."""

TEMPORAL_STATUS_NAMES: dict[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.RUNNING: "Running",
    WorkflowExecutionStatus.COMPLETED: "Completed",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
}
"""Temporal's own names (as in visibility queries and the UI)."""

ENDED_OUTSIDE: dict[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "terminated",
    WorkflowExecutionStatus.CANCELED: "terminated",
    WorkflowExecutionStatus.FAILED: "failed",
}
"""Close statuses that leave no outcome of the workflow's own, and the status recorded."""


def outcome_key(workflow_id: str, run_id: str) -> str:
    """The idempotency key of a run's outcome row (the workflow's and the reconciler's)."""
    return step_key(workflow_id, run_id, OUTCOME_EVENT)


def legacy_outcome_key(workflow_id: str) -> str:
    """The key runs used before keys carried the run id."""
    return f"{workflow_id}:{OUTCOME_EVENT}"


def run_outcome(rows: Sequence[ChainRow], workflow_id: str, run_id: str) -> ChainRow | None:
    """The outcome row of this run among a workflow's rows (a legacy row if none newer)."""
    by_key = {row.idempotency_key: row for row in rows if row.event_type == OUTCOME_EVENT}
    return by_key.get(outcome_key(workflow_id, run_id)) or by_key.get(
        legacy_outcome_key(workflow_id)
    )


def ending(payload: Mapping[str, Any]) -> str:
    """One line saying how the run ended, from its outcome payload."""
    status = str(payload.get("status") or "unknown")
    if payload.get("detected_by") == RECONCILER:
        said = _said(payload.get("detail"), payload.get("identity"))
        if status == "terminated":
            return f"terminated outside Proctor: {said}"
        return f"{status} ({payload.get('execution_status')} in Temporal): {said}"
    words = status.replace("_", " ")
    why = next((str(payload[k]) for k in ("error", "reason", "note") if payload.get(k)), None)
    if why and why.startswith(words):  # says it all already: "cancelled by ops: duplicate"
        return why
    extra = [
        f"{name} {payload[key]}"
        for name, key in (("rule", "rule_id"), ("policy", "policy_version"))
        if payload.get(key)
    ]
    text = f"{words} ({', '.join(extra)})" if extra else words
    return f"{text}: {why}" if why else text


def ending_of_row(row: ChainRow) -> str:
    payload = json.loads(row.payload)
    payload = payload if isinstance(payload, dict) else {}
    if payload.get("status") == "cancelled" and row.actor:
        reason = str(payload.get("error") or "").removeprefix("cancelled: ")
        return f"cancelled by {row.actor}: {reason}" if reason else f"cancelled by {row.actor}"
    return ending(payload)


def without_outcome(status: WorkflowExecutionStatus) -> str:
    """How a closed run ended when the ledger holds no outcome of it (yet)."""
    name = TEMPORAL_STATUS_NAMES.get(status, str(status))
    if status in ENDED_OUTSIDE:
        return (
            f"{name.lower()} in Temporal, no outcome recorded yet (the worker's reconciler adds it)"
        )
    return f"{name.lower()} in Temporal, no outcome recorded"


def _said(detail: object, identity: object) -> str:
    text = str(detail) if detail else "no reason given"
    return f"{text} (by {identity})" if identity else text
