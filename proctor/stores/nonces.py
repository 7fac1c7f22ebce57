"""Replay protection: each (agent, nonce) pair belongs to one request and one workflow run."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg


class NonceClaim(StrEnum):
    CLAIMED = "claimed"
    """New, or already claimed by this very run (a retried step)."""
    COPIED = "copied"
    """Claimed by another run or request with the same signed request: a replayed copy."""
    REUSED = "reused"
    """Claimed by a different request: the agent signed two requests with one nonce."""


@dataclass(frozen=True)
class NonceOwner:
    request_id: str
    run_id: str | None
    request_digest: str | None


class NonceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(
        self, agent_id: str, nonce: str, request_id: str, *, run_id: str, request_digest: str
    ) -> NonceClaim:
        """Claim the nonce for this run; idempotent for the same run (a retry)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "WITH ins AS (INSERT INTO request_nonces"
                " (agent_id, nonce, request_id, run_id, request_digest)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                " RETURNING request_id, run_id, request_digest)"
                " SELECT request_id, run_id, request_digest FROM ins UNION ALL"
                " SELECT request_id, run_id, request_digest FROM request_nonces"
                " WHERE agent_id = $1 AND nonce = $2 LIMIT 1",
                agent_id,
                nonce,
                request_id,
                run_id,
                request_digest,
            )
        assert row is not None
        owner = NonceOwner(row["request_id"], row["run_id"], row["request_digest"])
        if owner.request_id == request_id and owner.run_id == run_id:
            return NonceClaim.CLAIMED
        if owner.request_digest == request_digest:
            return NonceClaim.COPIED
        return NonceClaim.REUSED
