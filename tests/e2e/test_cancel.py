"""`proctor cancel` from the operator's side: the supported way to stop a governed action
before it executes, audited by the workflow; refused once the action runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from proctor.audit.chain import ChainRow
from proctor.client import agent_task_queue
from proctor.models import ActionRequest, ExecutionMode, ExecutionSpec
from tests.helpers.cli import arun
from tests.helpers.harness import POLICY_DIR, Harness

OPERATOR = "ops@example.com"


def operator_env(
    database_dsn: str, dev_server: WorkflowEnvironment, gov: Harness, tmp_path: Path
) -> dict[str, str]:
    return {
        "PROCTOR_DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_POLICY_DIR": str(POLICY_DIR),
    }


def said(stderr: str) -> list[str]:
    """What the command itself said on stderr (not the payload-key notice of a connection
    without encryption), failing on any traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if not line.startswith("no payload keys")]


def tool_mode(agent_id: str) -> ExecutionSpec:
    return ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(agent_id))


async def waiting_refund(gov: Harness) -> ActionRequest:
    key = await gov.new_agent()
    request = key.new_request("refund_requests", {"orderId": 11}, tool_mode(key.agent_id))
    await gov.proctor.start(request)
    await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
    return request


async def rows_of(gov: Harness, workflow_id: str, event_type: str) -> list[ChainRow]:
    return [r for r in await gov.audit.for_workflow(workflow_id) if r.event_type == event_type]


async def test_cancel_stops_an_action_waiting_for_approval(
    database_dsn: str,
    dev_server: WorkflowEnvironment,
    gov: Harness,
    tmp_path: Path,
) -> None:
    request = await waiting_refund(gov)
    run_id = (await gov.proctor.temporal.get_workflow_handle(request.workflow_id).describe()).run_id

    done = await arun(
        [
            "cancel",
            request.workflow_id,
            "--by",
            OPERATOR,
            "--reason",
            "duplicate of an earlier refund",
        ],
        operator_env(database_dsn, dev_server, gov, tmp_path),
        tmp_path,
    )

    assert done.returncode == 0, done.stderr
    # As the ledger has it: the canceller is the row's actor (in clear: who acted is not
    # personal data of the request), the reason its own field.
    assert done.stdout.startswith(f"{request.workflow_id}: cancelled by {OPERATOR}: ")
    assert done.stdout.endswith(": duplicate of an earlier refund\n")
    outcome = await gov.proctor.outcome(request.request_id)
    assert outcome.status is ActionStatus.CANCELLED
    (row,) = await rows_of(gov, request.workflow_id, "outcome")
    assert row.idempotency_key == f"{request.workflow_id}:{run_id}:outcome"
    assert row.actor == OPERATOR and json.loads(row.payload)["status"] == "cancelled"


async def test_cancel_is_refused_once_the_action_executes(
    database_dsn: str,
    dev_server: WorkflowEnvironment,
    gov: Harness,
    tmp_path: Path,
) -> None:
    key = await gov.new_agent()
    release = asyncio.Event()
    agent = Client(gov.proctor.temporal, task_queue=gov.task_queue)

    @agent.tool("tool:slow_export")
    async def slow_export(params: dict[str, Any]) -> str:
        await release.wait()
        return "exported"

    request = key.new_request("tool:slow_export", {}, tool_mode(key.agent_id))
    async with agent.agent_worker(key.agent_id):
        await agent.start(request)
        await gov.wait_for_stage(request.workflow_id, "executing")
        done = await arun(
            ["cancel", request.workflow_id, "--by", OPERATOR, "--reason", "too late?"],
            operator_env(database_dsn, dev_server, gov, tmp_path),
            tmp_path,
        )
        release.set()
        outcome = await agent.outcome(request.request_id)

    assert done.returncode == 1
    assert said(done.stderr) == [
        f"error: {request.workflow_id} is executing: the workflow refuses a cancel once the "
        "action runs (it records the attempt)"
    ]
    assert outcome.status is ActionStatus.COMPLETED
    (refused,) = await rows_of(gov, request.workflow_id, "cancel_refused")
    assert refused.actor == OPERATOR and json.loads(refused.payload)["reason"] == "too late?"


async def test_cancel_of_unknown_or_ended_actions_says_so(
    database_dsn: str,
    dev_server: WorkflowEnvironment,
    gov: Harness,
    tmp_path: Path,
) -> None:
    env = operator_env(database_dsn, dev_server, gov, tmp_path)
    key = await gov.new_agent()
    completed = await gov.proctor.execute(key, "read:orders", {}, handler=lambda p: "ok")
    terminated = await waiting_refund(gov)
    handle = gov.proctor.temporal.get_workflow_handle(terminated.workflow_id)
    await handle.terminate(reason="operator cleanup")
    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED

    unknown = await arun(
        ["cancel", "action-no-such-request", "--by", OPERATOR, "--reason", "x"], env, tmp_path
    )
    ended = await arun(
        ["cancel", completed.workflow_id, "--by", OPERATOR, "--reason", "x"], env, tmp_path
    )
    gone = await arun(
        ["cancel", terminated.workflow_id, "--by", OPERATOR, "--reason", "x"], env, tmp_path
    )

    assert (unknown.returncode, ended.returncode, gone.returncode) == (1, 1, 1)
    assert said(unknown.stderr) == [
        "error: no workflow 'action-no-such-request' in Temporal namespace 'default'"
    ]
    (line,) = said(ended.stderr)
    assert line.startswith(f"error: {completed.workflow_id} already ended: completed (rule ")
    assert said(gone.stderr) == [
        f"error: {terminated.workflow_id} already ended: terminated in Temporal, no outcome "
        "recorded yet (the worker's reconciler adds it)"
    ]
    assert await rows_of(gov, terminated.workflow_id, "outcome") == []


async def test_cancel_refuses_bad_input_in_one_line(
    database_dsn: str,
    dev_server: WorkflowEnvironment,
    gov: Harness,
    tmp_path: Path,
) -> None:
    request = await waiting_refund(gov)
    env = operator_env(database_dsn, dev_server, gov, tmp_path)
    blank = await arun(
        ["cancel", request.workflow_id, "--by", "  ", "--reason", "x"], env, tmp_path
    )
    huge = await arun(
        ["cancel", request.workflow_id, "--by", OPERATOR, "--reason", "x" * 5000], env, tmp_path
    )

    assert (blank.returncode, huge.returncode) == (2, 2)
    assert said(blank.stderr) == ["error: --by: String should have at least 1 character"]
    assert said(huge.stderr) == ["error: --reason: String should have at most 4000 characters"]
    progress = await gov.proctor.progress(request.workflow_id)
    assert progress.stage.value == "awaiting_approval"  # nothing was sent
    await gov.proctor.temporal.get_workflow_handle(request.workflow_id).terminate(
        reason="test over"
    )
