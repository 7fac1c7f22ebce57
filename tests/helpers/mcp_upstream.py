"""A small upstream MCP server built with the SDK's high-level API, for the gateway's tests and
benchmark: `python -m tests.helpers.mcp_upstream` serves stdio, `--http PORT` streamable HTTP.

Every tool run appends a line to the file named by `UPSTREAM_RUNS` (if set), so a test counts
how many times the upstream really ran a tool, whatever the gateway answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

RUNS_VARIABLE = "UPSTREAM_RUNS"
NAME = os.environ.get("UPSTREAM_NAME", "upstream")
"""The scheme of this upstream's resource (`<name>://readme`): two upstreams, two uris."""

upstream = MCPServer("proctor-test-upstream")


def _ran(tool: str, **arguments: object) -> None:
    runs = os.environ.get(RUNS_VARIABLE)
    if runs:
        with Path(runs).open("a", encoding="utf-8") as file:
            file.write(json.dumps({"tool": tool, **arguments}, sort_keys=True) + "\n")


@upstream.tool()
def echo(text: str) -> str:
    """Say the text back."""
    _ran("echo", text=text)
    return text


@upstream.tool()
def refund(order_id: int, amount: float) -> dict[str, object]:
    """Refund an order."""
    _ran("refund", order_id=order_id, amount=amount)
    return {"order_id": order_id, "refunded": amount}


@upstream.tool()
def delete_customer(customer_id: str) -> str:
    """Delete a customer for good."""
    _ran("delete_customer", customer_id=customer_id)
    return f"deleted {customer_id}"


@upstream.tool()
def env_var(name: str) -> str:
    """The value of an environment variable in the upstream's process ("" if unset): what the
    gateway passed on to it."""
    _ran("env_var", name=name)
    return os.environ.get(name, "")


@upstream.tool()
def big(size: int) -> str:
    """`size` bytes of text: a result too large to record whole."""
    _ran("big", size=size)
    return "x" * size


@upstream.tool()
def crash(reason: str) -> str:
    """Die in the middle of the call, as a crashing server does."""
    _ran("crash", reason=reason)
    os._exit(3)


@upstream.tool()
async def hang(seconds: float) -> str:
    """Take `seconds` to answer (a hung server, when longer than the gateway waits)."""
    _ran("hang", seconds=seconds)
    await asyncio.sleep(seconds)
    return "woke up"


@upstream.resource(f"{NAME}://readme", name="readme", mime_type="text/plain")
def readme() -> str:
    """A resource to read through the gateway."""
    return "read me through the gateway"


@upstream.prompt()
def greet(name: str) -> str:
    """A prompt to get through the gateway."""
    return f"Say hello to {name}."


TOKEN_VARIABLE = "UPSTREAM_TOKEN"
"""Over HTTP, when set: every request must carry `Authorization: Bearer <token>` (else 401),
as a real tickets server would; the gateway's `headers:` prove they are sent."""


def require_token(app: ASGIApp, token: str) -> ASGIApp:
    async def checked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"").decode()
            if given != f"Bearer {token}":
                await PlainTextResponse("no or a wrong token", status_code=401)(
                    scope, receive, send
                )
                return
        await app(scope, receive, send)

    return checked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, metavar="PORT")
    port = parser.parse_args().http
    if port is None:
        upstream.run("stdio")
        return
    app: ASGIApp = upstream.streamable_http_app()
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        app = require_token(app, token)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
