"""Slack interactions already handled, shared by every approvals-app replica: a replayed or
retried payload (same interaction key) finds its key taken and is dropped, so it votes once."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

INTERACTION_MEMORY = timedelta(days=7)
"""How long handled interaction keys are kept (Slack retries within minutes)."""


class SlackInteractionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, key: str, kind: str) -> bool:
        """Take the key for this delivery: True the first time, False for a repeat."""
        claimed = await self.pool.fetchval(
            "INSERT INTO slack_interactions (interaction_key, kind) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            key,
            kind,
        )
        return claimed is True

    async def forget(self, key: str) -> None:
        """Release a key whose handling failed, so that clicking again is not taken for a
        replay."""
        await self.pool.execute("DELETE FROM slack_interactions WHERE interaction_key = $1", key)

    async def forget_older_than(self, age: timedelta = INTERACTION_MEMORY) -> int:
        """Drop keys received more than `age` ago; how many went."""
        deleted = await self.pool.fetchval(
            "WITH gone AS (DELETE FROM slack_interactions"
            " WHERE received_at < now() - $1::interval RETURNING 1)"
            " SELECT count(*) FROM gone",
            age,
        )
        return int(deleted)
