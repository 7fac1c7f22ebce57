from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.e2e.harness import Harness, harness


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
