"""A fresh database per test, for tests that count or tamper with every row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proctor.db import connect_pool
from proctor.stores.audit_log import AuditLog
from tests.conftest import DatabaseFactory


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
