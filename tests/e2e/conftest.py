"""Fixtures shared by the end-to-end tests, and their `e2e` mark (`pytest -m "not e2e"`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.fake_slack import FakeSlack
from tests.helpers.slack import fake_slack

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is marked e2e, so the fast run can leave them out."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """The loopback Slack stand-in, with the test people and user groups."""
    async with fake_slack() as running:
        yield running
