"""`proctor history` and `proctor replay` against a real dev server, worker and Postgres."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from proctor.db import connect_pool
from tests.helpers.cli import arun
from tests.helpers.database import DatabaseFactory
from tests.helpers.harness import Harness, harness


@pytest.fixture
async def private_gov(
    make_database: DatabaseFactory, dev_server: WorkflowEnvironment
) -> AsyncIterator[tuple[Harness, str]]:
    """A worker on its own database: this test tampers with audit rows."""
    dsn = await make_database()
    pool = await connect_pool(dsn)
    try:
        async with harness(dev_server.client, pool) as gov:
            yield gov, dsn
    finally:
        await pool.close()


@pytest.fixture
def env(private_gov: tuple[Harness, str], cli_env: dict[str, str]) -> dict[str, str]:
    gov, dsn = private_gov
    return {**cli_env, "PROCTOR_DATABASE_URL": dsn, "PROCTOR_TASK_QUEUE": gov.task_queue}


async def approved_action(gov: Harness) -> str:
    key = await gov.new_agent()
    request_id = f"history-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"amount": 40},
            handler=lambda p: "refunded",
            request_id=request_id,
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await gov.vote(workflow_id, "alice@example.com", approve=True, note="fine")
    assert (await task).ok
    return workflow_id


async def test_history_tells_the_story_and_verifies_its_audit_rows(
    private_gov: tuple[Harness, str],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    gov, _ = private_gov
    workflow_id = await approved_action(gov)

    done = await arun(["history", workflow_id], env, tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    expected = [
        "asks refund_requests {'amount': 40}",
        "identity verified",
        "policy decided ESCALATE by rule refunds-need-approval",
        "audited decided as row",
        "vote: alice@example.com APPROVES via cli: fine",
        "the agent's handler reports success",
        "audited outcome as row",
        "outcome COMPLETED (rule refunds-need-approval",
    ]
    positions = [text.find(line) for line in expected]
    assert all(p >= 0 for p in positions), text
    assert positions == sorted(positions), text
    assert "audited escalated as row" in text  # (it may land after the vote: no fixed order)
    assert "[FAILS]" not in text and "all verify" in text

    as_json = json.loads(
        (await arun(["history", "show", workflow_id, "--json"], env, tmp_path)).stdout
    )
    rows = as_json["audit"]
    assert [r["event_type"] for r in rows][:3] == ["decided", "escalated", "vote"]
    assert all(r["verified"] for r in rows)
    assert as_json["status"] == "COMPLETED"

    # Someone edits the vote's row in place (bypassing the append-only triggers).
    vote_seq = next(r["seq"] for r in rows if r["event_type"] == "vote")
    async with gov.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE audit_log SET actor = 'mallory@example.com' WHERE seq = $1", vote_seq
        )
    tampered = await arun(["history", workflow_id], env, tmp_path)
    assert tampered.returncode == 1
    assert f"#{vote_seq} " in tampered.stdout and "TAMPERED" in tampered.stdout
    assert "1 DO NOT VERIFY" in tampered.stdout


async def test_export_then_replay_from_file_id_and_query(
    private_gov: tuple[Harness, str],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    gov, _ = private_gov
    workflow_id = await approved_action(gov)

    exported = await arun(["history", "export", workflow_id], env, tmp_path)
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "approved.json"
    path.write_text(exported.stdout)
    assert json.loads(exported.stdout)["events"][0]["eventType"] == (
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    )

    for args in (["--file", str(path)], [workflow_id], ["--query", f'WorkflowId="{workflow_id}"']):
        done = await arun(["replay", *args], env, tmp_path)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "1 replayed, 0 non-deterministic" in done.stdout, (args, done.stdout)

    # The same history as if an older code version had run a different first step.
    history = json.loads(path.read_text())
    first = next(
        e for e in history["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    )
    first["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "proctor.legacy_check"
    diverged = tmp_path / "diverged.json"
    diverged.write_text(json.dumps(history))
    done = await arun(["replay", "--file", str(path), "--file", str(diverged)], env, tmp_path)
    assert done.returncode == 1
    assert "ok     approved" in done.stdout
    assert "FAILED diverged: non-determinism" in done.stdout
    assert (
        f"diverges at event {first['eventId']} ACTIVITY_TASK_SCHEDULED proctor.legacy_check"
        in done.stdout
    ), done.stdout
    assert "2 replayed, 1 non-deterministic" in done.stdout


async def test_history_and_replay_refuse_bad_input_with_one_line(
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    missing = await arun(["history", "action-does-not-exist"], env, tmp_path)
    assert missing.returncode == 2
    assert "action-does-not-exist: no such workflow" in missing.stderr
    junk = tmp_path / "junk.json"
    junk.write_text('{"events": [{"eventType": "NOT_AN_EVENT"}]}')
    bad_file = await arun(["replay", "--file", str(junk)], env, tmp_path)
    assert bad_file.returncode == 2 and "not an exported workflow history" in bad_file.stderr
    neither = await arun(["replay"], env, tmp_path)
    assert neither.returncode == 2 and "exactly one of" in neither.stderr
    bad_query = await arun(["replay", "--query", "NotAField = 1 AND"], env, tmp_path)
    assert bad_query.returncode == 2 and "listing" in bad_query.stderr
