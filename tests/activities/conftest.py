"""What the activity tests share: the end-to-end policy set and a database of each test's own."""

from __future__ import annotations

import asyncpg
import pytest

from proctor.policy import PolicyEngine
from tests.helpers.harness import policy_engine


@pytest.fixture
def engine() -> PolicyEngine:
    return policy_engine()


@pytest.fixture
def db(private_database: tuple[asyncpg.Pool, str]) -> asyncpg.Pool:
    """The test's own database: a session's shared one is checked for audit rows at the end,
    and most of these tests write none."""
    return private_database[0]
