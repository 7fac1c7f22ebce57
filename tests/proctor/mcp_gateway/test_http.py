"""The gateway over streamable HTTP (`proctor mcp-gateway --http HOST:PORT`), in front of an
upstream over streamable HTTP that wants a bearer token (given in `mcp.yaml` as `${VAR}`) and
one over stdio; real `mcp.Client` sessions, a real worker on Temporal and Postgres
(tests/e2e/policies/mcp.yaml)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from tests.helpers.agent_process import agent_events, permission_asks
from tests.helpers.harness import Harness, eventually
from tests.helpers.mcp_gateway import (
    GatewaySetup,
    awaiting_approval,
    free_port,
    gateway_setup,
    http_process,
    listed,
    text_of,
)

ALICE = "alice@example.com"
TOKEN = "s3cret-upstream-token"


@dataclass
class HttpGateway:
    setup: GatewaySetup
    url: str
    upstream_url: str


@pytest.fixture
async def gateway(gov: Harness, tmp_path: Path, database_dsn: str) -> AsyncIterator[HttpGateway]:
    """An HTTP upstream (token required) and the gateway serving HTTP in front of it and of a
    stdio upstream; the token reaches the gateway only as an environment variable."""
    key = await gov.new_agent(role="mcp")
    setup = gateway_setup(gov, key, tmp_path / "gateway", database_dsn)
    upstream_port, gateway_port = free_port(), free_port()
    upstream_env = {**setup.env, "UPSTREAM_RUNS": str(setup.runs), "UPSTREAM_TOKEN": TOKEN}
    upstream_argv = [
        sys.executable,
        "-m",
        "tests.helpers.mcp_upstream",
        "--http",
        str(upstream_port),
    ]
    setup.write_config(
        {
            "tickets": {
                "url": f"http://127.0.0.1:{upstream_port}/mcp",
                "headers": {"Authorization": "Bearer ${TICKETS_TOKEN}"},
            },
            "files": setup.stdio_upstream("files"),
        },
        progress_interval_seconds=0.2,
    )
    setup.env["TICKETS_TOKEN"] = TOKEN
    gateway_argv = setup.gateway_argv("--http", f"127.0.0.1:{gateway_port}")
    async with (
        http_process(upstream_argv, upstream_env, upstream_port, tmp_path / "upstream.log"),
        http_process(gateway_argv, setup.env, gateway_port, tmp_path / "gateway.log") as url,
    ):
        yield HttpGateway(setup, url, f"http://127.0.0.1:{upstream_port}/mcp")


async def test_both_upstreams_are_listed_and_calls_are_governed_over_http(
    gateway: HttpGateway,
) -> None:
    async with McpClient(gateway.url) as client:
        listed_names = sorted(tool.name for tool in (await client.list_tools()).tools)
        allowed = await client.call_tool("tickets__echo", {"text": "over http"})
        denied = await client.call_tool("tickets__delete_customer", {"customer_id": "c-2"})
    assert listed_names == listed("files") + listed("tickets")
    assert text_of(allowed) == "over http" and not allowed.is_error
    assert denied.is_error and "(rule mcp-no-deletes)" in text_of(denied)
    assert gateway.setup.ran() == [{"tool": "echo", "text": "over http"}]


async def test_the_upstream_tool_schemas_are_listed_unchanged(gateway: HttpGateway) -> None:
    async with McpClient(gateway.url) as client:
        through = {tool.name: tool for tool in (await client.list_tools()).tools}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        McpClient(streamable_http_client(gateway.upstream_url, http_client=http)) as direct,
    ):
        straight = {tool.name: tool for tool in (await direct.list_tools()).tools}
    assert "delete_customer" in straight
    for name, tool in straight.items():
        if name == "delete_customer":
            assert f"tickets__{name}" not in through  # denied outright: hidden
            continue
        assert through[f"tickets__{name}"].model_copy(update={"name": name}) == tool


async def test_an_escalated_call_over_http_waits_with_progress_and_a_second_client_rejoins(
    gov: Harness, gateway: HttpGateway
) -> None:
    """The first client goes away while the refund waits; another session making the same
    call joins the same request, sees progress, and gets the result once alice approves."""
    notices: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notices.append(message)

    arguments = {"order_id": 21, "amount": 4.5}
    async with McpClient(gateway.url) as first:
        waiting = asyncio.create_task(first.call_tool("tickets__refund", arguments))
        workflow_id = await awaiting_approval(gov, gateway.setup.key.agent_id)
        waiting.cancel()
    async with McpClient(gateway.url) as second:
        again = asyncio.create_task(
            second.call_tool("tickets__refund", arguments, progress_callback=on_progress)
        )
        await eventually(lambda: len(notices) >= 2)
        await gov.vote(workflow_id, ALICE, approve=True)
        result = await asyncio.wait_for(again, 30)
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"order_id": 21, "refunded": 4.5}
    assert gateway.setup.ran("refund") == [{"tool": "refund", "order_id": 21, "amount": 4.5}]
    assert all(workflow_id in (notice or "") for notice in notices)
    workflows = {w for w, _ in await agent_events(gov, gateway.setup.key.agent_id)}
    assert workflows == {workflow_id}
    assert await permission_asks(gov.proctor.temporal, workflow_id) == 1
