"""`proctor agent …` on an agent id nobody registered: one line, exit 1, and nothing done (no
workflow started, no key written, no audit row)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from proctor.db import connect_pool
from proctor.stores.audit_log import AuditLog
from tests.helpers.cli import arun

COMMANDS = {
    "reinstate": ["--reason", "it behaves now", "--as", "lead@example.com"],
    "show": [],
    "rotate-key": ["--key-out", "{tmp}/new.pem"],
    "suspend": ["--reason", "investigating", "--as", "lead@example.com"],
    "revoke": [],
}


@pytest.mark.parametrize("command", list(COMMANDS))
async def test_an_unknown_agent_is_one_line_and_nothing_happens(
    cli_env: dict[str, str], tmp_path: Path, dev_server: WorkflowEnvironment, command: str
) -> None:
    agent_id = f"ghost-{uuid.uuid4().hex[:8]}"
    options = [o.format(tmp=tmp_path) for o in COMMANDS[command]]
    pool = await connect_pool(cli_env["PROCTOR_DATABASE_URL"], max_size=2)
    try:
        seq, _ = await AuditLog(pool).head()
        done = await arun(["agent", command, agent_id, *options], cli_env, tmp_path)
        audited = [r async for r in AuditLog(pool).rows(seq + 1) if r.agent_id == agent_id]
    finally:
        await pool.close()

    await asyncio.sleep(0.5)  # visibility is eventual: give a started workflow time to show
    started = [w.id async for w in dev_server.client.list_workflows(f"ProctorAgent = '{agent_id}'")]
    assert started == []
    assert not (tmp_path / "new.pem").exists()
    assert audited == []
    assert done.stderr == f"error: agent '{agent_id}' is not registered\n"
    assert done.returncode == 1
    assert done.stdout == ""


async def test_a_hostile_unknown_id_is_shown_escaped_and_cut(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    agent_id = "\x1b[31mred" + "x" * 5000
    done = await arun(["agent", "show", agent_id], cli_env, tmp_path)
    assert done.returncode == 1
    assert "\x1b" not in done.stderr and len(done.stderr) < 200
    assert done.stderr.startswith("error: agent '\\x1b[31mred") and done.stderr.count("\n") == 1
