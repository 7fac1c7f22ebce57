"""Memory of a `proctor worker` process holding workflows that wait for approval.

    python -m bench.waiting_memory [--workflows 10000] [--concurrency 100]

The worker runs as its own process (`proctor worker`, its cache sized to hold every waiting
workflow: PROCTOR_MAX_CACHED_WORKFLOWS) on a Temporal dev server (its transfer-task loading
unthrottled, so the workflows start faster; memory does not depend on it) and the embedded
Postgres (or PROCTOR_BENCH_DATABASE_URL);
escalated requests are started through the real client until N wait for a human. The figure is
the worker's resident memory then, next to the same process idle (after a few warm-up actions)
in the same run; the difference per workflow is what each waiting approval costs while cached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.database import bench_database
from proctor import AgentKey, Client
from proctor.contract import ACTION_ATTRIBUTE, SEARCH_ATTRIBUTES, STATUS_ATTRIBUTE
from proctor.db import connect_pool
from proctor.models import ExecutionMode, ExecutionSpec
from proctor.stores.agents import AgentStore

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
READY = "worker polling task queue"
POLICY = """role: bench
permissions:
  allow: ['read:*']
  escalate:
    - action: refund
      approvers: [approver@example.com]
      timeout: 30d
"""


@asynccontextmanager
async def worker_process(
    dsn: str, temporal: TemporalClient, queue: str, state: Path, cache: int
) -> AsyncIterator[psutil.Process]:
    """`proctor worker` as a child process, once it polls; stopped with SIGTERM after."""
    (state / "policies").mkdir(parents=True)
    (state / "policies" / "bench.yaml").write_text(POLICY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "TEMPORAL_"))}
    env |= {
        "PROCTOR_DATABASE_URL": dsn,
        "TEMPORAL_ADDRESS": temporal.service_client.config.target_host,
        "PROCTOR_TASK_QUEUE": queue,
        "PROCTOR_POLICY_DIR": str(state / "policies"),
        "PROCTOR_STATE_DIR": str(state),
        "PROCTOR_APPROVERS_FILE": str(state / "none.yaml"),
        "PROCTOR_MAX_CACHED_WORKFLOWS": str(cache),
        "PROCTOR_POLICY_RELOAD_SECONDS": "0",
    }
    log_path = state / "worker.log"
    with log_path.open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            str(BIN / "proctor"), "worker", cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while READY not in log_path.read_text(errors="replace"):
            if child.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.2)
        yield psutil.Process(child.pid)
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), 60)


async def waiting_count(temporal: TemporalClient) -> int:
    """Escalations waiting for a human; raises if any closed instead (refused, say): the
    figure would then measure fewer workflows than it claims."""
    closed = await temporal.count_workflows(
        f"ExecutionStatus != 'Running' AND {ACTION_ATTRIBUTE.name} = 'refund'"
    )
    if closed.count:
        raise RuntimeError(f"{closed.count} escalations closed instead of waiting")
    count = await temporal.count_workflows(
        f"ExecutionStatus = 'Running' AND {STATUS_ATTRIBUTE.name} = 'awaiting_approval'"
    )
    return count.count


async def settled_rss(process: psutil.Process) -> int:
    """Resident bytes once the worker has been idle a moment (two equal readings)."""
    last = -1
    while True:
        await asyncio.sleep(2)
        rss = int(process.memory_info().rss)
        if abs(rss - last) < 1 << 20:
            return rss
        last = rss


async def measure(
    dsn: str, state: Path, workflows: int, cache: int, concurrency: int
) -> dict[str, Any]:
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
        ],
    ) as env:
        pool = await connect_pool(dsn, max_size=4)
        key = AgentKey.generate(f"bench-{uuid.uuid4().hex[:8]}", "ed25519")
        await AgentStore(pool).register(
            key.agent_id, role="bench", owner="b@example.com", public_key_pem=key.public_key_pem
        )
        await pool.close()
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        proctor = Client(env.client, task_queue=queue)
        tool = ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=f"{queue}-tools")
        async with worker_process(dsn, env.client, queue, state, cache) as worker:
            for n in range(20):  # warm up: imports, pools, caches
                outcome = await proctor.execute(
                    key, "read:orders", {"n": n}, handler=lambda params: 1
                )
                assert outcome.ok, outcome
            idle = await settled_rss(worker)
            gate = asyncio.Semaphore(concurrency)

            async def start(n: int) -> None:
                async with gate:
                    await proctor.start(key.new_request("refund", {"n": n}, tool))

            async def waiting(first: int, last: int) -> None:
                await asyncio.gather(*(start(n) for n in range(first, last)))
                while True:  # visibility catches up a moment after the last start
                    if await waiting_count(env.client) >= last:
                        return
                    await asyncio.sleep(1)

            began = time.perf_counter()
            cached = min(cache, workflows)
            await waiting(0, cached)
            full = await settled_rss(worker)
            await waiting(cached, workflows)
            seconds = time.perf_counter() - began
            holding = await settled_rss(worker)
    return {
        "benchmark": "waiting_memory",
        "workflows": workflows,
        "worker_cache": cache,
        "start_rate_per_s": workflows / seconds,
        "idle_rss_mb": idle / 2**20,
        "cache_full_rss_mb": full / 2**20,
        "per_cached_workflow_kb": (full - idle) / cached / 1024,
        "holding_rss_mb": holding / 2**20,
        "target_mb": 1024,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--cache", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="proctor-bench-") as state:
        async with bench_database() as dsn:
            result = await measure(dsn, Path(state), args.workflows, args.cache, args.concurrency)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "waiting_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"worker RSS: idle {result['idle_rss_mb']:.0f} MB; cache full "
        f"({result['worker_cache']:,} waiting approvals) {result['cache_full_rss_mb']:.0f} MB "
        f"= {result['per_cached_workflow_kb']:.0f} KB per cached workflow; "
        f"{result['workflows']:,} waiting {result['holding_rss_mb']:.0f} MB "
        f"(target <= 1,024 MB); started {result['start_rate_per_s']:.0f} escalations/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
