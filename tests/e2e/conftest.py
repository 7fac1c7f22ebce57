"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.slack_harness import fake_slack
from tests.fakes.slack_web_api import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """The loopback Slack stand-in, with the test people and user groups."""
    async with fake_slack() as running:
        yield running
