"""Loopback networking for tests: free ports for servers a test starts, and a TCP proxy a test
can pause (bytes held, as on a hung network) or cut (every connection dropped and new ones
refused, as when the server is down)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


def free_port() -> int:
    """A loopback port free right now, for a server that must be told its port up front."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class TcpProxy:
    upstream_host: str | None = None
    upstream_port: int | None = None
    upstream_unix: str | None = None
    """A Unix socket path instead of host:port (an embedded Postgres listens on one)."""
    port: int = 0
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    up: bool = True
    _server: asyncio.Server | None = None
    _links: set[asyncio.StreamWriter] = field(default_factory=set)
    _pumps: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self.flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        self.cut_links()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for pump in list(self._pumps):
            pump.cancel()

    def pause(self) -> None:
        """Hold every byte in both directions (connections stay open)."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def go_down(self) -> None:
        """Drop every connection; refuse new ones until `come_up`."""
        self.up = False
        self.cut_links()

    def come_up(self) -> None:
        self.up = True

    def cut_links(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if not self.up:
            client_writer.transport.abort()
            return
        try:
            if self.upstream_unix is not None:
                server_reader, server_writer = await asyncio.open_unix_connection(
                    self.upstream_unix
                )
            else:
                server_reader, server_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
        except OSError:
            client_writer.transport.abort()
            return
        self._links.update((client_writer, server_writer))
        for reader, writer in ((client_reader, server_writer), (server_reader, client_writer)):
            pump = asyncio.create_task(self._pump(reader, writer))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while True:
                await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self.flowing.wait()
                if not self.up:
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._links.discard(writer)


@asynccontextmanager
async def tcp_proxy(
    *,
    upstream_host: str | None = None,
    upstream_port: int | None = None,
    upstream_unix: str | None = None,
) -> AsyncIterator[TcpProxy]:
    """Started on a free loopback port; closed (every link cut) at the end."""
    proxy = await TcpProxy(
        upstream_host=upstream_host, upstream_port=upstream_port, upstream_unix=upstream_unix
    ).start()
    try:
        yield proxy
    finally:
        await proxy.close()
