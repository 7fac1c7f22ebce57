"""The MCP gateway's cost: one allowed tool call (`echo`) through `proctor mcp-gateway` over
stdio, against the same call straight to the upstream (ungoverned) and against the same
governance done in process (`Client.call` of a function that calls the upstream), same server,
same worker, same run.

    python -m bench.mcp_gateway [--runs 40]

A. gateway: an `mcp.Client` session to `proctor mcp-gateway --config mcp.yaml` (a process of its
   own, started once, in front of tests/helpers/mcp_upstream.py), `call_tool("files__echo")`:
   each call is an action `mcp:files:echo` decided by the worker and audited in Postgres.
B. upstream: an `mcp.Client` session straight to the same upstream over stdio, ungoverned.
C. in process: `Client.call` of the same agent and action (with a request id, as the gateway
   asks), running a function that calls `echo` through an already-open `mcp.Client` session to
   the upstream: governance and the upstream call without the gateway, so A/C is what the
   gateway itself adds (its stdio hop, the open-request lookup, the result's round trip as JSON).

The three run alternated, the order rotating every round, each call after a random pause of up
to one transfer-task load period, on a dev server whose transfer-task load is unthrottled (see
bench/e2e_latency.py). Every call sends a text of its own; each is checked to come back as sent
and to have run the upstream's tool exactly once (its run log). The figures that matter are the
ratios of medians A/B and A/C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.client import Client as McpClient
from mcp.client.stdio import StdioServerParameters
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.database import bench_database
from bench.e2e_latency import LOAD_PERIOD, SERVERS, summary, timed
from proctor import AgentKey, Client
from proctor.approvals.keys import VoteKeyDirectory
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool
from tests.helpers.agent_process import REPO
from tests.helpers.harness import Harness, running_worker
from tests.helpers.mcp_gateway import UPSTREAM, gateway_setup, stdio_session

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
SERVER = "files"
"""The upstream's name in `mcp.yaml`: the gateway lists its tools as `files__<tool>`."""
ACTION = f"mcp:{SERVER}:echo"
"""The action a gateway call of `echo` is (allowed to role "mcp" by tests/e2e/policies/mcp.yaml)."""
PATHS = ("gateway", "upstream", "in_process")
Timed = Callable[[], Awaitable[float | None]]


def text_of(result: types.CallToolResult) -> str:
    """A tool result's text, or an error if the tool answered with one."""
    text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
    if result.is_error:
        raise RuntimeError(f"the call failed: {text}")
    return text


class RunLog:
    """An upstream's run log (`UPSTREAM_RUNS`), read from where the last check stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_runs(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        self._offset += len(data)
        return [json.loads(line) for line in data.decode().splitlines() if line]

    def check_ran_once(self, text: str) -> None:
        """The tool ran exactly once since the last check, with `text` (no figure otherwise)."""
        runs = self.new_runs()
        if runs != [{"tool": "echo", "text": text}]:
            raise RuntimeError(f"{self.path.name}: expected one echo of {text!r}, got {runs}")


@asynccontextmanager
async def upstream_session(runs: Path) -> AsyncIterator[McpClient]:
    """An `mcp.Client` straight to the test upstream over stdio, started as the gateway starts
    it (same command, cwd and run-log variable; no response cache)."""
    parameters = StdioServerParameters(
        command=UPSTREAM[0], args=UPSTREAM[1:], env={"UPSTREAM_RUNS": str(runs)}, cwd=REPO
    )
    async with McpClient(parameters, read_timeout_seconds=60, cache=None) as client:
        yield client


class Paths:
    """The three measured calls, each timed around the call alone, then checked."""

    def __init__(
        self,
        gov: Harness,
        agent: AgentKey,
        gateway: tuple[McpClient, RunLog],
        upstream: tuple[McpClient, RunLog],
        in_process: tuple[McpClient, RunLog],
    ) -> None:
        self.gov = gov
        self.agent = agent
        self.gateway, self.gateway_runs = gateway
        self.upstream, self.upstream_runs = upstream
        self.session, self.session_runs = in_process

    async def through_gateway(self) -> float:
        text = _text()
        start = _now()
        result = await self.gateway.call_tool(f"{SERVER}__echo", {"text": text})
        elapsed = _now() - start
        _check(text_of(result), text)
        self.gateway_runs.check_ran_once(text)
        return elapsed

    async def straight_to_upstream(self) -> float:
        text = _text()
        start = _now()
        result = await self.upstream.call_tool("echo", {"text": text})
        elapsed = _now() - start
        _check(text_of(result), text)
        self.upstream_runs.check_ran_once(text)
        return elapsed

    async def governed_in_process(self) -> float:
        text = _text()
        session = self.session

        async def echo(text: str) -> str:
            """The upstream's echo through the open session: what the gateway forwards."""
            return text_of(await session.call_tool("echo", {"text": text}))

        start = _now()
        answer = await self.gov.proctor.call(
            self.agent, ACTION, echo, {"text": text}, request_id=uuid.uuid4().hex
        )
        elapsed = _now() - start
        _check(answer, text)
        self.session_runs.check_ran_once(text)
        return elapsed

    def runs(self) -> dict[str, Timed]:
        return {
            "gateway": self.through_gateway,
            "upstream": self.straight_to_upstream,
            "in_process": self.governed_in_process,
        }


def _text() -> str:
    """A text of its own for every call: the gateway treats the same call in its rejoin window
    as the same request (its recorded answer, the tool not run again)."""
    return f"bench {uuid.uuid4().hex}"


def _now() -> float:
    return time.perf_counter()


def _check(got: str, sent: str) -> None:
    if got != sent:
        raise RuntimeError(f"echo answered {got!r} to {sent!r}")


async def rotate(runs: dict[str, Timed], rounds: int) -> dict[str, list[float]]:
    """`rounds` of each, alternated (the order rotating every round so none always comes
    first), each after a random pause of up to one load period."""
    pause = random.Random(8)  # a fixed seed: jitter, not secrecy  # noqa: S311
    names = list(runs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for offset in range(len(names)):
            name = names[(index + offset) % len(names)]
            await asyncio.sleep(pause.uniform(0, LOAD_PERIOD))
            samples[name].append(await timed(runs[name]))
    return samples


async def measure(runs: int, dsn: str) -> dict[str, Any]:
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=SERVERS["unthrottled"],
    ) as env:
        pool = await connect_pool(dsn, max_size=10)
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        with tempfile.TemporaryDirectory(prefix="bench-mcp-") as folder:
            tmp = Path(folder)
            vote_keys = VoteKeyDirectory(tmp / "vote-keys")
            gov = Harness(Client(env.client, task_queue=queue), pool, queue, vote_keys)
            agent = await gov.new_agent(role="mcp")
            setup = gateway_setup(gov, agent, tmp / "gateway", dsn)
            setup.write_config({SERVER: setup.stdio_upstream()})
            direct_log, session_log = tmp / "direct-runs.jsonl", tmp / "session-runs.jsonl"
            async with (
                running_worker(env.client, pool, queue, vote_keys=vote_keys),
                stdio_session(setup) as gateway,
                upstream_session(direct_log) as upstream,
                upstream_session(session_log) as session,
            ):
                paths = Paths(
                    gov,
                    agent,
                    (gateway, RunLog(setup.runs)),
                    (upstream, RunLog(direct_log)),
                    (session, RunLog(session_log)),
                )
                await rotate(paths.runs(), 5)  # warm up: imports, caches, sticky queues
                samples = await rotate(paths.runs(), runs)
        await pool.close()
    figures = {name: summary(samples[name]) for name in PATHS}
    gateway_p50 = figures["gateway"]["p50_ms"]
    return {
        "benchmark": "mcp_gateway",
        "runs": runs,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python "
        f"{platform.python_version()}",
        "server": " ".join(SERVERS["unthrottled"]),
        **figures,
        "ratio_gateway_to_upstream_p50": gateway_p50 / figures["upstream"]["p50_ms"],
        "ratio_gateway_to_in_process_p50": gateway_p50 / figures["in_process"]["p50_ms"],
    }


def report(result: dict[str, Any]) -> None:
    labels = {
        "gateway": "A. through the gateway",
        "upstream": "B. straight to upstream",
        "in_process": "C. Client.call in process",
    }
    print(f"-- one allowed echo, {result['runs']} runs each, alternated ({result['server']})")
    print(f"{'':28}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for name in PATHS:
        row = result[name]
        print(f"{labels[name]:28}{row['p50_ms']:9.2f}{row['p90_ms']:9.2f}{row['p99_ms']:9.2f}")
    print(
        f"A/B p50: {result['ratio_gateway_to_upstream_p50']:.2f}x; "
        f"A/C p50: {result['ratio_gateway_to_in_process_p50']:.3f}x"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    async with bench_database() as dsn:
        result = await measure(args.runs, dsn)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mcp_gateway.json").write_text(json.dumps(result, indent=2) + "\n")
    report(result)


if __name__ == "__main__":
    asyncio.run(main())
