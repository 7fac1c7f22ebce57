"""`proctor up` on the shipped policies/, which hold the openclaw toolkit's file as written: it
starts, and the file's own escalation (`account_deletion`, which no other file names) waits for
the default approvers (the repo's approvers.yaml gives alice and bob the `approver` role) and
completes on `proctor approve --as alice@example.com`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from proctor import ActionStatus, AgentKey, Client
from proctor.approvals.operator_client import OperatorClient
from proctor.models import ApprovalCard
from tests.helpers.network import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[2]


def proctor(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "proctor"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_up_serves_the_toolkit_file_and_its_escalation_reaches_the_default_approvers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    settings = {
        "PROCTOR_STATE_DIR": str(state),
        "PROCTOR_TEMPORAL_PORT": str(free_port()),
        "PROCTOR_TEMPORAL_UI_PORT": str(free_port()),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "TEMPORAL_"))}
    env.update(settings)
    log = (tmp_path / "up.log").open("w+")
    stack = subprocess.Popen(
        [str(BIN / "proctor"), "up"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        while not (state / "stack.json").exists():
            assert stack.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        demo = proctor(["demo"], env)  # registers the agent the toolkit's file names
        assert demo.returncode == 0, demo.stdout + demo.stderr

        for name in [n for n in os.environ if n.startswith(("PROCTOR_", "TEMPORAL_"))]:
            monkeypatch.delenv(name)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        card, outcome = asyncio.run(delete_an_account(state, env))
    finally:
        stack.send_signal(signal.SIGTERM)
        code = stack.wait(timeout=60)
    assert code == 0, Path(log.name).read_text()
    assert card.rule_id == "customer-service-agent:escalate:account_deletion"
    assert card.approvers == ("alice@example.com", "bob@example.com")
    assert outcome == (ActionStatus.COMPLETED, "deleted")


async def delete_an_account(
    state: Path, env: dict[str, str]
) -> tuple[ApprovalCard, tuple[ActionStatus, Any]]:
    """`account_deletion` as the demo's agent; approved by alice from the command line."""
    key = AgentKey.load(state / "keys" / "customer-service-agent.pem")
    agent = await Client.connect()

    async def delete_account(params: dict[str, Any]) -> str:
        return "deleted"

    running = asyncio.create_task(
        agent.execute(key, "account_deletion", {"customer": 42}, handler=delete_account)
    )
    async with asyncio.timeout(60):
        card = None
        while card is None:
            waiting = await OperatorClient(agent).pending_approvals()
            card = next((w.card for w in waiting if w.card.action == "account_deletion"), None)
            await asyncio.sleep(0.2)
        approve = ["approve", card.workflow_id, "--as", "alice@example.com"]
        done = await asyncio.to_thread(proctor, approve, env)
        assert done.returncode == 0, done.stdout + done.stderr
        outcome = await running
    return card, (outcome.status, outcome.result)
