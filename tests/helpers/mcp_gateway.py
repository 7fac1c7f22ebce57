"""The MCP gateway as its users run it: `proctor mcp-gateway --config mcp.yaml` in a process of
its own, pointed at a test's Temporal server, task queue, policy and registry, in front of the
test upstream (tests/helpers/mcp_upstream.py) over stdio or streamable HTTP; and a real
`mcp.Client` talking to it over stdio or HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import yaml
from mcp.client import Client as McpClient
from mcp.client.stdio import StdioServerParameters

from proctor import AgentKey
from tests.helpers.agent_process import REPO, agent_env, agent_events
from tests.helpers.harness import POLICY_DIR, Harness

PROCTOR = "from proctor.cli_entry import main; main()"
LISTED_TOOLS = ("big", "crash", "echo", "env_var", "hang", "refund")
"""The test upstream's tools that tests/e2e/policies/mcp.yaml does not deny outright (it denies
`delete_customer`), in the order a sorted listing gives them."""


def listed(server: str) -> list[str]:
    """The tool names the gateway lists for the test upstream `server`."""
    return [f"{server}__{tool}" for tool in LISTED_TOOLS]


UPSTREAM = [sys.executable, "-m", "tests.helpers.mcp_upstream"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def text_of(result: types.CallToolResult) -> str:
    """A tool result's text, as the model reads it."""
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


@dataclass
class GatewaySetup:
    """A gateway's folder: its `mcp.yaml`, the agent's key beside it, the upstream's run log."""

    folder: Path
    key: AgentKey
    env: dict[str, str]
    runs: Path

    @property
    def config(self) -> Path:
        return self.folder / "mcp.yaml"

    def write_config(self, servers: dict[str, Any], **settings: Any) -> Path:
        """`mcp.yaml` as a user writes it, the key given by a path relative to the file."""
        document = {"agent_key": f"{self.key.agent_id}.pem", "servers": servers, **settings}
        self.config.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.config

    def stdio_upstream(self, name: str = "upstream", **extra: Any) -> dict[str, Any]:
        """The test upstream as a stdio server entry; its resource is `<name>://readme`."""
        return {
            "command": UPSTREAM,
            "cwd": str(REPO),
            "env": {"UPSTREAM_RUNS": str(self.runs), "UPSTREAM_NAME": name},
            **extra,
        }

    def ran(self, tool: str | None = None) -> list[dict[str, Any]]:
        """Every tool run the upstream logged (of `tool` only, if given)."""
        if not self.runs.exists():
            return []
        runs = [json.loads(line) for line in self.runs.read_text().splitlines() if line]
        return [run for run in runs if tool is None or run["tool"] == tool]

    def gateway_argv(self, *extra: str) -> list[str]:
        return [sys.executable, "-c", PROCTOR, "mcp-gateway", "--config", str(self.config), *extra]

    def stdio_parameters(self) -> StdioServerParameters:
        """How an MCP client (Claude Desktop, `MCPServerStdio`) starts the gateway."""
        argv = self.gateway_argv()
        return StdioServerParameters(command=argv[0], args=argv[1:], env=self.env, cwd=REPO)


async def files_gateway(
    gov: Harness, folder: Path, database_dsn: str, **settings: Any
) -> GatewaySetup:
    """A new agent of role `mcp`, and its gateway's config with the test upstream over stdio
    as `files` (`settings`: the config's top-level settings)."""
    key = await gov.new_agent(role="mcp")
    setup = gateway_setup(gov, key, folder / "gateway", database_dsn)
    setup.write_config({"files": setup.stdio_upstream()}, **settings)
    return setup


async def requests_of(gov: Harness, agent_id: str) -> list[str]:
    """The workflows of the agent's requests, in the order the ledger first saw them."""
    workflows: list[str] = []
    for workflow, _ in await agent_events(gov, agent_id):
        if workflow not in workflows:
            workflows.append(workflow)
    return workflows


async def statuses(gov: Harness, agent_id: str) -> list[str]:
    """How each of the agent's requests ended, in the order they were made."""
    return [
        (await gov.proctor.outcome(workflow.removeprefix("action-"))).status
        for workflow in await requests_of(gov, agent_id)
    ]


def gateway_setup(gov: Harness, key: AgentKey, folder: Path, database_dsn: str) -> GatewaySetup:
    """The gateway's environment: the agent's key under `folder`, Temporal and the task queue
    of `gov`, the test policy set and the registry (to hide what policy denies outright)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = agent_env(
        gov.proctor.temporal,
        gov.task_queue,
        key,
        folder,
        PROCTOR_POLICY_DIR=str(POLICY_DIR),
        PROCTOR_DATABASE_URL=database_dsn,
    )
    del env["PROCTOR_AGENT_KEY"]  # the config names the key
    return GatewaySetup(folder, key, env, folder / "upstream-runs.jsonl")


@asynccontextmanager
async def stdio_session(setup: GatewaySetup) -> AsyncIterator[McpClient]:
    """A real MCP client that starts the gateway over stdio (and stops it on leaving)."""
    async with McpClient(setup.stdio_parameters(), read_timeout_seconds=60) as client:
        yield client


@asynccontextmanager
async def http_process(
    argv: list[str], env: dict[str, str], port: int, log: Path
) -> AsyncIterator[str]:
    """`argv` serving MCP over streamable HTTP on `port`: its URL once it answers."""
    with log.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=REPO, env=env, stdout=errors, stderr=errors, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        await _answering(url, process, log)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def _answering(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            if process.returncode is not None:
                raise AssertionError(f"{url}: exited {process.returncode}:\n{_text(log)}")
            try:
                await http.get(url, timeout=1)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)


async def awaiting_approval(gov: Harness, agent_id: str, seconds: float = 30) -> str:
    """The workflow of the agent's one request once it awaits approval (found in the ledger,
    as an operator would)."""
    async with asyncio.timeout(seconds):
        while True:
            rows = await gov.pool.fetch(
                "SELECT DISTINCT workflow_id FROM audit_log WHERE agent_id = $1", agent_id
            )
            if rows:
                workflow_id: str = rows[0]["workflow_id"]
                await gov.wait_for_stage(workflow_id, "awaiting_approval", seconds=seconds)
                return workflow_id
            await asyncio.sleep(0.05)
