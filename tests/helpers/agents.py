"""Registered agents for the activity tests."""

from __future__ import annotations

import uuid

import asyncpg

from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from tests.helpers.harness import OWNER


async def register_agent(pool: asyncpg.Pool, role: str) -> AgentKey:
    """An agent of a policy role (tester, limited, ...) owned by OWNER; returns its key."""
    key = AgentKey.generate(f"agent-{uuid.uuid4().hex[:10]}", "ed25519")
    await AgentStore(pool).register(
        key.agent_id, role=role, owner=OWNER, public_key_pem=key.public_key_pem
    )
    return key
