"""Recorded histories of every path replay against today's workflow code.

A change that would break workflows already running (waiting a week for an approval, say) fails
here: Temporal's Replayer raises on the first command that differs from the history. The replay
runs in Temporal's sandbox (workers don't, by default), so a clock, random number or I/O call
on any recorded path fails here too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from proctor.contract import GOVERNED_ACTION_WORKFLOW, JUDGE_REQUEST, RECORD_AUDIT
from proctor.models import GovernedActionInput, Outcome
from proctor_server.worker.main import sandboxed_runner
from proctor_server.workflows.governed_action import GovernedActionWorkflow
from proctor_server.workflows.reinstatement import ReinstatementWorkflow

HERE = Path(__file__).parents[1] / "histories"
HISTORIES = sorted(p for p in HERE.glob("*.json") if not p.stem.startswith("workflow_ids"))
PATHS = {
    "allowed",
    "denied",
    "identity_refused",
    "handler_failed",
    "approved",
    "rejected",
    "quorum",
    "timed_out",
    "durable_tool",
    "rate_admitted",
    "rate_limited",
    "ladder",
    "ladder_timeout",
    "reinstated",
    "reinstatement_expired",
    "slack_approved",
    "slack_role_approved",
    "slack_soft_rejected",
    "slack_ladder",
    "cancelled",
    "unsigned_vote",
    "replayed_request",
    "grant_made",
    "grant_used",
    "executed_by_service",
}


WORKFLOW_IDS = json.loads((HERE / "workflow_ids.json").read_text()) | json.loads(
    (HERE / "workflow_ids_added.json").read_text()
)
"""v0.2.0's fixtures (its id file is pinned by the release) and those recorded since."""


def load(path: Path) -> WorkflowHistory:
    """Under its recorded workflow id: votes and asks are bound to it."""
    return WorkflowHistory.from_json(WORKFLOW_IDS.get(path.stem, path.stem), path.read_text())


def test_every_workflow_path_has_a_recorded_history() -> None:
    assert {p.stem for p in HISTORIES} >= PATHS


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays_deterministically(path: Path) -> None:
    replayer = Replayer(
        workflows=[GovernedActionWorkflow, ReinstatementWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandboxed_runner(),
    )
    await replayer.replay_workflow(load(path))


@workflow.defn(name=GOVERNED_ACTION_WORKFLOW, sandboxed=False)
class ReorderedWorkflow:
    """A careless edit: audits before judging the request."""

    @workflow.run
    async def run(self, start: GovernedActionInput) -> Outcome:
        await workflow.execute_activity(
            RECORD_AUDIT, start.request, start_to_close_timeout=timedelta(seconds=5)
        )
        await workflow.execute_activity(
            JUDGE_REQUEST, start.request, start_to_close_timeout=timedelta(seconds=5)
        )
        raise AssertionError("unreachable in replay")


async def test_an_incompatible_change_fails_replay() -> None:
    replayer = Replayer(workflows=[ReorderedWorkflow], data_converter=pydantic_data_converter)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(HISTORIES[0]))
