"""Start the gateway: its upstreams, then the MCP server on stdio or streamable HTTP; on the
way out, every upstream is closed (its subprocess stopped)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import uvicorn
from mcp.server.stdio import stdio_server

from proctor.client import Client
from proctor.mcp_gateway.calls import GovernedCalls
from proctor.mcp_gateway.config import GatewayConfig
from proctor.mcp_gateway.local_policy import LocalPolicy
from proctor.mcp_gateway.server import Gateway
from proctor.mcp_gateway.upstream import Upstream
from proctor.models import AgentInfo
from proctor.signing import PASSPHRASE_VARIABLE, AgentKey

log = logging.getLogger(__name__)


def gateway_key(config: GatewayConfig) -> AgentKey:
    """The one agent this gateway runs as: `agent_key` in the config, else PROCTOR_AGENT_KEY."""
    if config.agent_key is None:
        return AgentKey.from_env()
    return AgentKey.load(config.agent_key, os.environ.get(PASSPHRASE_VARIABLE) or None)


def build_gateway(
    config: GatewayConfig,
    client: Client,
    key: AgentKey,
    *,
    policy_dir: Path,
    agent: AgentInfo | None,
) -> Gateway:
    upstreams = {
        name: Upstream(name, spec, connect_timeout=config.transport_timeout_seconds)
        for name, spec in config.servers.items()
    }
    policy = None
    if agent is None:
        log.warning(
            "no policy read here for %s: no tool hidden, every call decided first", key.agent_id
        )
    else:
        policy = LocalPolicy.read(policy_dir, agent)
    return Gateway(config, upstreams, GovernedCalls(client, key, config, policy), policy)


async def serve(gateway: Gateway, http: tuple[str, int] | None) -> None:
    """Serve one MCP client on stdio, or any number over streamable HTTP at `http`."""
    for upstream in gateway.upstreams.values():
        upstream.start()
    server = gateway.server()
    try:
        if http is None:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
        else:
            host, port = http
            app = server.streamable_http_app(host=host)
            config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
            await uvicorn.Server(config).serve()
    finally:
        for upstream in gateway.upstreams.values():
            with contextlib.suppress(Exception):
                await upstream.close()
