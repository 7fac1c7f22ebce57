"""Registered agents: public keys, identity metadata, status and trust score."""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from proctor.audit.store import Connection
from proctor.models import AGENT_ID_PATTERN, AgentInfo, AgentStatus
from proctor.signing import algorithm_of, load_public_key

_AGENT_ID = re.compile(AGENT_ID_PATTERN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AgentExists(ValueError):
    pass


class UnknownAgent(LookupError):
    pass


@dataclass(frozen=True)
class AgentRecord:
    info: AgentInfo
    public_key_pem: str
    key_algorithm: str


def validate_registration(agent_id: str, role: str, owner: str) -> None:
    """Refuse ids and metadata that would be unreadable or dangerous in logs and UIs."""
    if not _AGENT_ID.match(agent_id):
        raise ValueError(
            f"invalid agent id {agent_id[:40]!r}: 1-128 characters, letters, digits and . _ : @ -"
        )
    if not role or not re.match(r"^[A-Za-z0-9._-]{1,64}$", role):
        raise ValueError(f"invalid role {role[:40]!r}: 1-64 letters, digits, . _ -")
    if not _EMAIL.match(owner) or len(owner) > 254:
        raise ValueError(f"invalid owner {owner[:60]!r}: give the owner's email address")


class AgentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(
        self, agent_id: str, *, role: str, owner: str, public_key_pem: str,
        display_name: str | None = None, trust_score: float = 100.0,
    ) -> AgentInfo:
        validate_registration(agent_id, role, owner)
        algorithm = algorithm_of(load_public_key(public_key_pem))
        try:
            async with self.pool.acquire() as conn:
                record = await conn.fetchrow(
                    "INSERT INTO agents (agent_id, display_name, role, owner, public_key_pem,"
                    " key_algorithm, trust_score) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING *",
                    agent_id, display_name or agent_id, role, owner, public_key_pem,
                    algorithm, trust_score,
                )
        except asyncpg.UniqueViolationError as exc:
            raise AgentExists(f"agent {agent_id!r} is already registered") from exc
        assert record is not None
        return _info(record)

    async def get(self, agent_id: str) -> AgentRecord | None:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow("SELECT * FROM agents WHERE agent_id = $1", agent_id)
        if record is None:
            return None
        return AgentRecord(_info(record), record["public_key_pem"], record["key_algorithm"])

    async def list(self) -> list[AgentInfo]:
        async with self.pool.acquire() as conn:
            records = await conn.fetch("SELECT * FROM agents ORDER BY agent_id")
        return [_info(r) for r in records]

    async def set_status(self, agent_id: str, status: AgentStatus) -> AgentInfo:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(
                "UPDATE agents SET status = $2, updated_at = now() WHERE agent_id = $1 "
                "RETURNING *", agent_id, status.value,
            )
        if record is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return _info(record)


async def adjust_trust(
    conn: Connection, agent_id: str, delta: float
) -> tuple[float, float] | None:
    """Atomically add `delta` (clamped to 0..100); returns (old, new), None if no such agent.

    One UPDATE, no read-modify-write: concurrent workflows never lose each other's changes.
    """
    record = await conn.fetchrow(
        "UPDATE agents a SET trust_score = LEAST(100, GREATEST(0, a.trust_score + $2)),"
        " updated_at = now() FROM (SELECT trust_score FROM agents WHERE agent_id = $1"
        " FOR UPDATE) old WHERE a.agent_id = $1 RETURNING old.trust_score AS old,"
        " a.trust_score AS new",
        agent_id, delta,
    )
    return None if record is None else (record["old"], record["new"])


def _info(record: asyncpg.Record) -> AgentInfo:
    return AgentInfo(
        agent_id=record["agent_id"], display_name=record["display_name"], role=record["role"],
        owner=record["owner"], trust_score=record["trust_score"],
        status=AgentStatus(record["status"]),
    )
