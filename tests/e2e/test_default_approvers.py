"""The openclaw toolkit's own file, shipped unchanged, on the real stack: its escalations name no
approvers, so they reach the organisation's default approvers (by role from the approver
directory, or PROCTOR_DEFAULT_APPROVERS) and complete on a signed approval by one of them; with
nobody to ask the set still loads, `policy check` warns, and the request times out denied."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client as TemporalClient
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey, Client
from proctor.approvals.defaults import DefaultApprovers
from proctor.approvals.directory import ApproverDirectory, DirectoryEntry
from proctor.approvals.keys import VoteKeyDirectory
from proctor.audit.keys import LedgerKeys
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.settings import ProctorSettings
from proctor.stores.agents import AgentStore
from proctor_server.worker.main import build_worker
from tests.helpers.cli import run
from tests.helpers.harness import OWNER, Harness
from tests.helpers.tools import recording_tools, tool_request

TOOLKIT_FILE = Path(__file__).parents[2] / "policies" / "customer-service-agent.yaml"
DIRECTORY = ApproverDirectory(
    {
        "zed@example.com": DirectoryEntry(roles=("approver",)),
        "lead@example.com": DirectoryEntry(roles=("support-lead",)),
        "ann@example.com": DirectoryEntry(roles=("support-lead", "approver")),
    }
)


@pytest.fixture
def toolkit_policies(tmp_path: Path) -> Path:
    """A policy directory holding only the toolkit's file, byte for byte."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "customer-service-agent.yaml").write_bytes(TOOLKIT_FILE.read_bytes())
    return folder


@asynccontextmanager
async def toolkit_proctor(
    temporal: TemporalClient,
    pool: asyncpg.Pool,
    policies: Path,
    directory: ApproverDirectory,
    defaults: DefaultApprovers,
) -> AsyncIterator[tuple[Harness, AgentKey]]:
    """A worker serving the toolkit's policy set, and its agent registered (the file names it)."""
    engine = PolicyEngine(load_policy_dir(policies))
    task_queue = f"proctor-test-{uuid.uuid4().hex[:8]}"
    vote_keys = VoteKeyDirectory(Path(tempfile.mkdtemp(prefix="proctor-votekeys-")))
    key = AgentKey.generate("customer-service-agent")
    await AgentStore(pool).register(
        key.agent_id, role="support", owner=OWNER, public_key_pem=key.public_key_pem
    )
    async with build_worker(
        temporal,
        pool,
        lambda: engine,
        task_queue=task_queue,
        keys=LedgerKeys.generate(),
        vote_keys=vote_keys,
        directory=lambda: directory,
        default_approvers=defaults,
    ):
        yield Harness(Client(temporal, task_queue=task_queue), pool, task_queue, vote_keys), key


async def approved_by_a_default_approver(
    gov: Harness, key: AgentKey, expected: tuple[str, ...], outsider: str
) -> None:
    """A refund reaches exactly `expected`; `outsider`'s vote is refused, the first expected
    approver's signed vote completes it."""
    request_id = f"refund-{uuid.uuid4().hex[:8]}"
    workflow_id = f"action-{request_id}"
    calls: list[dict[str, Any]] = []

    def refund(params: dict[str, Any]) -> str:
        calls.append(params)
        return "refunded"

    task = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"orderId": 12345, "amount": 599.99},
            handler=refund,
            request_id=request_id,
        )
    )
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    pending = await gov.wait_until_listed(workflow_id)
    assert pending.card.approvers == expected
    assert pending.card.rule_id == "customer-service-agent:escalate:refund_requests"

    await gov.vote(workflow_id, outsider, approve=True)
    refused = await gov.wait_until(workflow_id, lambda p: len(p.votes) == 1)
    assert refused.votes[0].reason == "not an authorised approver for this rule"
    assert calls == []
    await gov.vote(workflow_id, expected[0], approve=True, note="ok")
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.result == "refunded"
    assert calls == [{"orderId": 12345, "amount": 599.99}]
    assert [(v.vote.approver, v.accepted) for v in outcome.approvals if v.accepted] == [
        (expected[0], True)
    ]
    [decided] = await gov.audit.for_workflow(workflow_id, ["decided"])
    escalation = json.loads(decided.payload)["decision"]["escalation"]
    assert len(escalation["approvers"]) == len(expected)  # recorded as asked (emails redacted)


async def test_the_toolkit_escalation_reaches_the_directorys_approvers(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
    toolkit_policies: Path,
) -> None:
    pool, _ = private_database
    async with toolkit_proctor(
        dev_server.client, pool, toolkit_policies, DIRECTORY, DefaultApprovers()
    ) as (gov, key):
        await approved_by_a_default_approver(
            gov, key, ("zed@example.com", "ann@example.com"), outsider="lead@example.com"
        )


async def test_the_toolkit_escalation_reaches_proctor_default_approvers(
    dev_server: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
    toolkit_policies: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROCTOR_DEFAULT_APPROVERS", "lead@example.com, role:support-lead")
    monkeypatch.setenv("PROCTOR_DEFAULT_APPROVER_ROLE", "")
    defaults = DefaultApprovers.from_settings(ProctorSettings())
    pool, _ = private_database
    async with toolkit_proctor(dev_server.client, pool, toolkit_policies, DIRECTORY, defaults) as (
        gov,
        key,
    ):
        await approved_by_a_default_approver(
            gov, key, ("lead@example.com", "ann@example.com"), outsider="zed@example.com"
        )


async def test_nobody_to_ask_loads_warns_and_times_out_denied(
    time_skipping: WorkflowEnvironment,
    private_database: tuple[asyncpg.Pool, str],
    toolkit_policies: Path,
    tmp_path: Path,
) -> None:
    check = run(["policy", "check", str(toolkit_policies)], {}, tmp_path)
    assert check.returncode == 0, check.stderr
    assert "customer-service-agent.yaml:5: warning: permissions.escalate.0: no approvers" in (
        check.stderr
    )
    assert run(["policy", "check", "--strict", str(toolkit_policies)], {}, tmp_path).returncode == 1

    pool, _ = private_database
    async with toolkit_proctor(
        time_skipping.client, pool, toolkit_policies, ApproverDirectory(), DefaultApprovers()
    ) as (gov, key):
        agent, calls = recording_tools(gov, "account_deletion")
        request = tool_request(key, "account_deletion", {"customer": 7})
        async with agent.agent_worker(key.agent_id):
            handle = await agent.start(request)
            await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
            await time_skipping.sleep(timedelta(hours=25))
            outcome = await handle.result()

    assert outcome.status is ActionStatus.TIMED_OUT
    assert calls == []
    rows = await gov.audit.for_workflow(request.workflow_id)
    assert [r.event_type for r in rows] == [
        "decided",
        "escalated",
        "approval_timed_out",
        "trust_changed",
        "outcome",
    ]
    escalation = json.loads(rows[0].payload)["decision"]["escalation"]
    assert (escalation["approvers"], escalation["on_timeout"]) == ([], "deny")
