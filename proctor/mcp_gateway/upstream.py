"""One upstream MCP server, kept connected: started on demand, restarted with backoff after it
crashes or hangs, and never able to take the gateway down with it.

The SDK's `Client` must be entered and left in one task (anyio cancel scopes), so each upstream
lives in a task of its own (`_keep_connected`); calls borrow its session while it is up. A call
that finds the connection broken, or waits past `call_timeout_seconds`, fails with
`UpstreamFailed` (one line naming the server) and marks the connection for a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from proctor.errors import UnavailableError
from proctor.mcp_gateway.config import HttpUpstream, StdioUpstream

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 30.0
_BROKEN_CONNECTION = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    ConnectionError,
    OSError,
)


class UpstreamFailed(UnavailableError):
    """An upstream MCP server could not answer a call: not running, crashed during it, or hung
    (it is being restarted)."""


class Upstream:
    """A connection to one upstream server, restarted whenever it breaks."""

    def __init__(
        self,
        name: str,
        spec: StdioUpstream | HttpUpstream,
        *,
        connect_timeout: float,
    ) -> None:
        self.name = name
        self.spec = spec
        self.connect_timeout = connect_timeout
        self.restarts = 0
        """Connections made after the first (for tests and the operator's log)."""
        self.last_error: str | None = None
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._unreachable = asyncio.Event()
        """The last attempt to connect failed: calls fail at once until one succeeds."""
        self._task: asyncio.Task[None] | None = None
        self._connections = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_connected(), name=f"upstream-{self.name}")

    async def close(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._broken.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=10)
            self._task = None

    async def session(self) -> tuple[Client, int]:
        """The connected client and its connection's number, waiting up to `connect_timeout`
        for a (re)start."""
        self.start()
        if not self._ready.is_set() and not self._unreachable.is_set():
            ready = asyncio.ensure_future(self._ready.wait())
            failed = asyncio.ensure_future(self._unreachable.wait())
            await asyncio.wait(
                (ready, failed), timeout=self.connect_timeout, return_when=FIRST_COMPLETED
            )
            ready.cancel()
            failed.cancel()
        if not self._ready.is_set():
            why = f": {self.last_error}" if self.last_error else ""
            raise UpstreamFailed(
                f"upstream MCP server {self.name!r} is not connected{why}; it is being restarted"
            )
        assert self._client is not None
        return self._client, self._connections

    async def call_tool(self, tool: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Forward one `tools/call`; its result as the upstream gave it (an upstream error
        answer is raised as the SDK's `MCPError`, to be passed on as it is)."""
        result = await self.request(
            f"{tool!r}",
            lambda client: client.call_tool(tool, arguments),
            during=f"the call to {tool!r}",
            timeout_note=" (call_timeout_seconds)",
        )
        if not isinstance(result, types.CallToolResult):
            raise UpstreamFailed(
                f"upstream MCP server {self.name!r} answered {tool!r} with "
                f"{type(result).__name__}, not a tool result"
            )
        return result

    async def request(
        self,
        what: str,
        make: Callable[[Client], Awaitable[Any]],
        *,
        during: str | None = None,
        timeout_note: str = "",
    ) -> Any:
        """`make(client)` on the live connection: an answer, the upstream's own error answer
        (`MCPError`, passed on), or `UpstreamFailed` when it broke or hung (and is restarted)."""
        client, connection = await self.session()
        timeout = self.spec.call_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return await make(client)
        except TimeoutError:
            self._restart(connection, f"no answer to {what} within {timeout:g}s")
            raise UpstreamFailed(
                f"upstream MCP server {self.name!r} did not answer {what} within "
                f"{timeout:g}s{timeout_note}; it is being restarted"
            ) from None
        except MCPError as exc:
            if exc.code != types.CONNECTION_CLOSED:
                raise
            why = exc.message
        except _BROKEN_CONNECTION as exc:
            why = _one_line(exc)
        self._restart(connection, f"connection lost during {during or what}: {why}")
        raise UpstreamFailed(
            f"upstream MCP server {self.name!r} failed during {during or what} ({why}); "
            "it is being restarted"
        )

    def _restart(self, connection: int, why: str) -> None:
        """Restart the connection numbered `connection`, unless it has been already (calls in
        flight on a broken connection all fail; the new one must not pay for them)."""
        if connection != self._connections or not self._ready.is_set():
            return
        self.last_error = why
        self._ready.clear()
        self._broken.set()

    async def _keep_connected(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while not self._stopping:
            try:
                async with AsyncExitStack() as stack:
                    # In this task (not wait_for's): the SDK's client holds anyio scopes.
                    try:
                        async with asyncio.timeout(self.connect_timeout):
                            client = await stack.enter_async_context(self._new_client(stack))
                    except BaseException:
                        self._unreachable.set()
                        raise
                    self._unreachable.clear()
                    self._client = client
                    self._broken.clear()
                    self._connections += 1
                    if self._connections > 1:
                        self.restarts += 1
                        log.warning("upstream %s: restarted (%s)", self.name, self.last_error)
                    self._ready.set()
                    backoff = FIRST_BACKOFF_SECONDS
                    await self._broken.wait()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # any failure of the upstream is its own
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                self.last_error = _one_line(exc)
                log.warning("upstream %s: %s", self.name, self.last_error)
            finally:
                self._ready.clear()
                self._client = None
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):  # close() ends the wait
                await asyncio.wait_for(self._stopped.wait(), timeout=backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _new_client(self, stack: AsyncExitStack) -> Client:
        spec = self.spec
        if isinstance(spec, StdioUpstream):
            parameters = StdioServerParameters(
                command=spec.command[0],
                args=list(spec.command[1:]),
                env=dict(spec.env) or None,
                cwd=spec.cwd,
            )
            return Client(parameters, cache=None)
        # The SDK's documented way to send headers: an HTTP client of our own (its timeouts as
        # the SDK's defaults: a response stream may stay open for minutes).
        http = httpx2.AsyncClient(headers=dict(spec.headers), timeout=httpx2.Timeout(30, read=300))
        stack.push_async_callback(http.aclose)
        return Client(streamable_http_client(spec.url, http_client=http), cache=None)


def _one_line(exc: BaseException) -> str:
    """An exception as one line (an ExceptionGroup as its first leaf)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
