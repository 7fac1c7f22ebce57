"""Shadow mode on the real stack: a shadow deny over an enforced allow changes nothing (the
action runs, trust moves as for any success), the audit trail records the shadow decision next
to the enforced one, and `proctor policy shadow-report` counts it; a shadow escalation never
reaches a human."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from temporalio.client import Client as TemporalClient
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey, Client
from proctor.approvals.keys import VoteKeyDirectory
from proctor.audit.keys import LedgerKeys
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.stores.agents import AgentStore
from proctor_server.worker.main import build_worker
from tests.helpers.cli import arun, run
from tests.helpers.harness import OWNER, Harness

ENFORCED = """
role: tester
permissions:
  allow: ["refund:*", "pay:*"]
"""
TRIAL = """
role: tester
mode: shadow
permissions:
  deny: [{action: "refund:*", id: trial-no-refunds}]
  escalate: [{action: "pay:*", id: trial-pay-approval, approvers: [alice@example.com]}]
"""


@asynccontextmanager
async def shadow_proctor(
    temporal: TemporalClient, pool: asyncpg.Pool, folder: Path
) -> AsyncIterator[tuple[Harness, AgentKey]]:
    """A worker serving an enforced file and a shadow file, and a tester agent at trust 60."""
    (folder / "enforced.yaml").write_text(ENFORCED)
    (folder / "trial.yaml").write_text(TRIAL)
    engine = PolicyEngine(load_policy_dir(folder))
    task_queue = f"proctor-test-{uuid.uuid4().hex[:8]}"
    vote_keys = VoteKeyDirectory(Path(tempfile.mkdtemp(prefix="proctor-votekeys-")))
    key = AgentKey.generate(f"agent-{uuid.uuid4().hex[:10]}")
    await AgentStore(pool).register(
        key.agent_id, role="tester", owner=OWNER, public_key_pem=key.public_key_pem, trust_score=60
    )
    async with build_worker(
        temporal,
        pool,
        lambda: engine,
        task_queue=task_queue,
        keys=LedgerKeys.generate(),
        vote_keys=vote_keys,
    ):
        yield Harness(Client(temporal, task_queue=task_queue), pool, task_queue, vote_keys), key


async def test_a_shadow_deny_is_recorded_and_reported_and_changes_nothing(
    dev_server: WorkflowEnvironment, private_database: tuple[asyncpg.Pool, str], tmp_path: Path
) -> None:
    pool, dsn = private_database
    async with shadow_proctor(dev_server.client, pool, tmp_path) as (gov, key):
        request_id = f"refund-{uuid.uuid4().hex[:8]}"
        outcome = await asyncio.wait_for(
            gov.proctor.execute(
                key, "refund:order", {"amount": 5}, handler=lambda p: "done", request_id=request_id
            ),
            30,
        )
        assert outcome.status is ActionStatus.COMPLETED and outcome.result == "done"
        rows = await gov.audit.for_workflow(f"action-{request_id}")
        [decided] = [json.loads(r.payload) for r in rows if r.event_type == "decided"]
        assert decided["decision"]["effect"] == "allow"
        [shadow] = [json.loads(r.payload) for r in rows if r.event_type == "shadow_decision"]
        assert shadow["agree"] is False
        assert shadow["shadow"] == {"effect": "deny", "rule_id": "trial-no-refunds"}
        agent = await AgentStore(pool).get(key.agent_id)
        assert agent is not None and agent.info.trust_score == 61  # a success, nothing charged

    report = await arun(
        ["policy", "shadow-report", "--since", "1h"], {"PROCTOR_DATABASE_URL": dsn}, tmp_path
    )
    assert report.returncode == 0, report.stderr
    assert "trial-no-refunds: 1 disagree, 0 agree" in report.stdout
    assert "  allow -> deny: 1" in report.stdout
    as_json = await arun(
        ["policy", "shadow-report", "--json"], {"PROCTOR_DATABASE_URL": dsn}, tmp_path
    )
    assert json.loads(as_json.stdout) == [
        {
            "rule": "trial-no-refunds",
            "agree": 0,
            "disagree": 1,
            "differences": [{"enforced": "allow", "shadow": "deny", "count": 1}],
        }
    ]


async def test_a_shadow_escalation_never_reaches_a_human(
    dev_server: WorkflowEnvironment, private_database: tuple[asyncpg.Pool, str], tmp_path: Path
) -> None:
    pool, _ = private_database
    async with shadow_proctor(dev_server.client, pool, tmp_path) as (gov, key):
        request_id = f"pay-{uuid.uuid4().hex[:8]}"
        outcome = await asyncio.wait_for(
            gov.proctor.execute(
                key, "pay:vendor", {"amount": 5}, handler=lambda p: "paid", request_id=request_id
            ),
            30,
        )
        assert outcome.status is ActionStatus.COMPLETED and outcome.approvals == ()
        kinds = [r.event_type for r in await gov.audit.for_workflow(f"action-{request_id}")]
        assert "escalated" not in kinds and "shadow_decision" in kinds


def test_a_bad_since_is_one_line_naming_it(tmp_path: Path) -> None:
    done = run(["policy", "shadow-report", "--since", "yesterday"], {}, tmp_path)
    assert done.returncode == 2
    assert "--since" in done.stderr and "'yesterday' is neither a duration" in done.stderr
