"""`python -m proctor_server.worker.main` runs the worker: every function `main()` reaches is
defined before the module's `__main__` guard calls it (the worker only needs the last of them,
the signal handling, once Postgres and Temporal answer, so only a real start proves it)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from tests.helpers.processes import WorkerProcess, new_task_queue, worker_env


async def test_python_m_worker_main_polls_and_stops_on_sigterm(
    private_database: tuple[asyncpg.Pool, str],
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    _, dsn = private_database
    env = worker_env(dsn, dev_server.client, new_task_queue(), tmp_path / "state")
    worker = WorkerProcess(
        env, tmp_path / "worker.log", argv=[sys.executable, "-m", "proctor_server.worker.main"]
    )
    try:
        await asyncio.to_thread(worker.start().wait_ready)
        code = await asyncio.to_thread(worker.signal, signal.SIGTERM)
    finally:
        worker.kill()
    assert code == 0, worker.log()
    assert "worker stopped" in worker.log()


def test_python_m_worker_main_says_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proctor_server.worker.main"],
        env={
            "PATH": "/usr/bin:/bin",
            "PROCTOR_STATE_DIR": str(tmp_path),
            "PROCTOR_SIGNATURE_WINDOW_SECONDS": "soon",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: PROCTOR_SIGNATURE_WINDOW_SECONDS: Input should be a valid number, unable to "
        "parse string as a number"
    ]
