"""Replay protection: each (agent, nonce) pair may belong to one request only."""

from __future__ import annotations

import asyncpg


class NonceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, agent_id: str, nonce: str, request_id: str) -> bool:
        """True if the nonce is new, or already claimed by this same request (a retry)."""
        async with self.pool.acquire() as conn:
            owner = await conn.fetchval(
                "WITH ins AS (INSERT INTO request_nonces (agent_id, nonce, request_id)"
                " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING request_id)"
                " SELECT request_id FROM ins UNION ALL"
                " SELECT request_id FROM request_nonces WHERE agent_id = $1 AND nonce = $2"
                " LIMIT 1",
                agent_id, nonce, request_id,
            )
        return bool(owner == request_id)
