"""The worker and the default approvers' settings: a malformed one stops it in one line; a set
whose escalations nobody can approve starts, and says so in its log."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from tests.helpers.processes import WorkerProcess, new_task_queue, worker_env

TOOLKIT_FILE = Path(__file__).parents[2] / "policies" / "customer-service-agent.yaml"


def toolkit_policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "customer-service-agent.yaml").write_bytes(TOOLKIT_FILE.read_bytes())
    return folder


def test_a_malformed_default_approvers_setting_stops_the_worker_in_one_line(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proctor_server.worker.main"],
        env={
            "PATH": "/usr/bin:/bin",
            "PROCTOR_STATE_DIR": str(tmp_path),
            "PROCTOR_POLICY_DIR": str(toolkit_policies(tmp_path)),
            "PROCTOR_DEFAULT_APPROVER_ROLE": "role:approver",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: PROCTOR_DEFAULT_APPROVER_ROLE: 'role:approver' is not a role name"
    ]


async def test_a_worker_whose_escalations_nobody_can_approve_starts_and_warns(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    _, dsn = private_database
    env = worker_env(
        dsn,
        dev_server.client,
        new_task_queue(),
        tmp_path / "state",
        PROCTOR_POLICY_DIR=str(toolkit_policies(tmp_path)),
    )
    worker = WorkerProcess(
        env, tmp_path / "worker.log", argv=[sys.executable, "-m", "proctor_server.worker.main"]
    )
    try:
        await asyncio.to_thread(worker.start().wait_ready)
        code = await asyncio.to_thread(worker.signal, signal.SIGTERM)
    finally:
        worker.kill()
    assert code == 0, worker.log()
    warned = [line for line in worker.log().splitlines() if "are nobody" in line]
    assert len(warned) == 2, worker.log()
    assert (
        "customer-service-agent.yaml:5: permissions.escalate.0: no approvers, and the "
        in (warned[0])
    )
