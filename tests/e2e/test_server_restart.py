"""A wait for approval outlives a restart of the Temporal server (same SQLite file) and of the
worker: the approval given afterwards runs the action once."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from temporalio.client import Client as TemporalClient

from proctor import ActionStatus, Client
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.temporal import connect_temporal, dev_server_type
from proctor_server.worker.stack import temporal_binary
from tests.helpers.harness import Harness, running_worker
from tests.helpers.network import free_port
from tests.helpers.tools import recording_tools, tool_request


@contextmanager
def dev_server(db_file: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--log-level",
        "warn",
    ]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}={dev_server_type(key)}"]
    with (db_file.parent / "temporal.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


async def connected(port: int, server: subprocess.Popen[bytes], log: Path) -> TemporalClient:
    async with asyncio.timeout(90):
        while True:
            if server.poll() is not None:
                raise AssertionError(await asyncio.to_thread(log.read_text))
            try:
                client = await connect_temporal(f"127.0.0.1:{port}")
                await client.count_workflows()
                return client
            except Exception:  # starting up
                await asyncio.sleep(0.3)


async def test_an_approval_wait_survives_a_server_and_worker_restart(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    port, task_queue = free_port(), f"proctor-restart-{uuid.uuid4().hex[:8]}"
    db_file = tmp_path / "temporal.db"
    log = tmp_path / "temporal.log"
    with dev_server(db_file, port) as server:
        client = await connected(port, server, log)
        gov = Harness(Client(client, task_queue=task_queue), pool, task_queue)
        key = await gov.new_agent()
        agent, _ = recording_tools(gov, "refund_requests")
        request = tool_request(key, "refund_requests", {"orderId": 77})
        async with (
            running_worker(client, pool, task_queue, vote_keys=gov.vote_keys),
            agent.agent_worker(key.agent_id),
        ):
            await agent.start(request)
            await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
            await asyncio.sleep(0.5)  # the escalation's last steps settle before the stop

    with dev_server(db_file, port) as server:  # same SQLite file: the history is still there
        client = await connected(port, server, log)
        gov = Harness(Client(client, task_queue=task_queue), pool, task_queue, gov.vote_keys)
        agent, calls = recording_tools(gov, "refund_requests")
        async with (
            running_worker(client, pool, task_queue, vote_keys=gov.vote_keys),
            agent.agent_worker(key.agent_id),
        ):
            await gov.wait_for_stage(request.workflow_id, "awaiting_approval", seconds=60)
            await gov.vote(request.workflow_id, "alice@example.com", approve=True)
            outcome = await asyncio.wait_for(gov.proctor.outcome(request.request_id), 60)
    assert outcome.status is ActionStatus.COMPLETED
    assert calls == [{"orderId": 77}]
    assert [r.event_type for r in await gov.audit.for_workflow(request.workflow_id)].count(
        "outcome"
    ) == 1
