"""The ledger's fixtures for the audit and store tests: a fresh database per test (they count
or tamper with every row) and its `AuditLog`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proctor.db import connect_pool
from proctor.stores.audit_log import AuditLog
from tests.helpers.database import DatabaseFactory


@pytest.fixture
async def dsn(make_database: DatabaseFactory) -> str:
    return await make_database()


@pytest.fixture
async def audit(dsn: str) -> AsyncIterator[AuditLog]:
    pool = await connect_pool(dsn, max_size=12)
    try:
        yield AuditLog(pool)
    finally:
        await pool.close()
