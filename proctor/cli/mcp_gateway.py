"""`proctor mcp-gateway`: an MCP server in front of other MCP servers, every tool call governed
as one agent (see proctor.mcp_gateway). Stdio by default, for a client that starts it (Claude
Desktop, Cursor, `MCPServerStdio`); `--http HOST:PORT` serves streamable HTTP instead.

Nothing but MCP goes to stdout: logs go to stderr, which stdio clients keep as the server's log.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from proctor.cli.common import database, fail, proctor_client, run_async, settings
from proctor.errors import ProctorError
from proctor.models import AgentInfo
from proctor.stores.agents import AgentStore

MISSING_MCP = "the MCP gateway needs the mcp extra (missing {package}): pip install 'proctor[mcp]'"
AGENT_LOOKUP_SECONDS = 5.0


@click.command("mcp-gateway")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The gateway's YAML: agent_key and the upstream servers.",
)
@click.option(
    "--http",
    "http",
    default=None,
    metavar="HOST:PORT",
    help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.",
)
def mcp_gateway(config_path: Path, http: str | None) -> None:
    """Proxy MCP servers' tools, resources and prompts; govern every tool call."""
    try:  # the extra's packages, imported only when the command runs
        from proctor.mcp_gateway.config import GatewayConfig, load_gateway_config
        from proctor.mcp_gateway.run import build_gateway, gateway_key, serve
    except ModuleNotFoundError as exc:
        fail(MISSING_MCP.format(package=exc.name))
    try:
        config = load_gateway_config(config_path)
    except ProctorError as exc:  # one line per problem, as `policy check` prints them
        for problem in str(exc).splitlines():
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    address = _host_port(http) if http is not None else None
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="proctor mcp-gateway: %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "httpx2", "mcp"):  # a line per request; their warnings still show
        logging.getLogger(chatty).setLevel(logging.WARNING)

    @run_async
    async def start(config: GatewayConfig) -> None:
        key = gateway_key(config)
        client = await proctor_client()
        agent = await _agent_info(key.agent_id)
        policy_dir = settings().policy_dir
        await serve(build_gateway(config, client, key, policy_dir=policy_dir, agent=agent), address)

    start(config)


async def _agent_info(agent_id: str) -> AgentInfo | None:
    """The agent's registry record (its role decides which rules apply), if the registry can be
    read from here; else None: no tool is hidden, and every call is decided before it is run."""
    try:
        async with asyncio.timeout(AGENT_LOOKUP_SECONDS), database() as pool:
            record = await AgentStore(pool).get(agent_id)
    except (ProctorError, TimeoutError, OSError) as exc:
        logging.getLogger(__name__).warning("agent registry not readable here: %s", exc)
        return None
    if record is None:
        logging.getLogger(__name__).warning(
            "agent %s is not in the registry: Proctor will refuse every call it makes", agent_id
        )
        return None
    return record.info


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--http {value!r}: give HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]"), int(port)
