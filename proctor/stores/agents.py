"""Registered agents: public keys, identity metadata, status and trust score."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from proctor.errors import ConflictError, InputError, NotFoundError
from proctor.models import AGENT_ID_PATTERN, AgentInfo, AgentStatus, TrustChange
from proctor.signing import algorithm_of, load_public_key
from proctor.stores.connection import Connection

_AGENT_ID = re.compile(AGENT_ID_PATTERN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AgentExists(ConflictError):
    pass


class UnknownAgent(NotFoundError):
    pass


@dataclass(frozen=True)
class AgentRecord:
    info: AgentInfo
    public_key_pem: str
    key_algorithm: str
    previous_public_key_pem: str | None = None
    previous_key_valid_until: datetime | None = None

    def keys_valid_at(self, moment: datetime) -> list[str]:
        """The current key, plus the rotated-out one while its grace period lasts."""
        keys = [self.public_key_pem]
        if (
            self.previous_public_key_pem
            and self.previous_key_valid_until
            and moment < self.previous_key_valid_until
        ):
            keys.append(self.previous_public_key_pem)
        return keys


def validate_registration(agent_id: str, role: str, owner: str) -> None:
    """Refuse ids and metadata that would be unreadable or dangerous in logs and UIs."""
    if not _AGENT_ID.match(agent_id):
        raise InputError(
            f"invalid agent id {agent_id[:40]!r}: 1-128 characters, letters, digits and . _ : @ -"
        )
    if not role or not re.match(r"^[A-Za-z0-9._-]{1,64}$", role):
        raise InputError(f"invalid role {role[:40]!r}: 1-64 letters, digits, . _ -")
    if not _EMAIL.match(owner) or len(owner) > 254:
        raise InputError(f"invalid owner {owner[:60]!r}: give the owner's email address")


class AgentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(
        self,
        agent_id: str,
        *,
        role: str,
        owner: str,
        public_key_pem: str,
        display_name: str | None = None,
        trust_score: float = 100.0,
    ) -> AgentInfo:
        validate_registration(agent_id, role, owner)
        algorithm = algorithm_of(load_public_key(public_key_pem))
        try:
            async with self.pool.acquire() as conn:
                record = await conn.fetchrow(
                    "INSERT INTO agents (agent_id, display_name, role, owner, public_key_pem,"
                    " key_algorithm, trust_score) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING *",
                    agent_id,
                    display_name or agent_id,
                    role,
                    owner,
                    public_key_pem,
                    algorithm,
                    trust_score,
                )
        except asyncpg.UniqueViolationError as exc:
            raise AgentExists(f"agent {agent_id!r} is already registered") from exc
        assert record is not None
        return _info(record)

    async def get(self, agent_id: str) -> AgentRecord | None:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow("SELECT * FROM agents WHERE agent_id = $1", agent_id)
        return None if record is None else _record(record)

    async def rotate_key(self, agent_id: str, public_key_pem: str, grace: timedelta) -> AgentRecord:
        """The new key is valid at once; the old one until now + grace, then refused."""
        algorithm = algorithm_of(load_public_key(public_key_pem))
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(
                "UPDATE agents SET previous_public_key_pem = public_key_pem,"
                " previous_key_algorithm = key_algorithm,"
                " previous_key_valid_until = now() + $3::interval,"
                " public_key_pem = $2, key_algorithm = $4, updated_at = now()"
                " WHERE agent_id = $1 RETURNING *",
                agent_id,
                public_key_pem,
                grace,
                algorithm,
            )
        if record is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return _record(record)

    async def list(self) -> list[AgentInfo]:
        async with self.pool.acquire() as conn:
            records = await conn.fetch("SELECT * FROM agents ORDER BY agent_id")
        return [_info(r) for r in records]

    async def set_status(self, agent_id: str, status: AgentStatus) -> AgentInfo:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(
                "UPDATE agents SET status = $2, updated_at = now() WHERE agent_id = $1 RETURNING *",
                agent_id,
                status.value,
            )
        if record is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return _info(record)


@dataclass(frozen=True)
class TrustUpdate:
    old_score: float
    new_score: float
    suspended: bool
    """This change took the agent to 0 and suspended it."""
    autonomy_blocked: bool


async def adjust_trust(conn: Connection, change: TrustChange) -> TrustUpdate | None:
    """Atomically add the change (clamped to 0..100); None if there is no such agent.

    One UPDATE, no read-modify-write, so concurrent workflows never lose each other's
    changes. In the same statement: at 0 an active agent is suspended, and below the minimum
    score autonomy is blocked until the score is back at the recovery threshold.
    """
    record = await conn.fetchrow(
        """
        WITH old AS (SELECT trust_score, status FROM agents WHERE agent_id = $1 FOR UPDATE),
             next AS (SELECT LEAST(100, GREATEST(0, trust_score + $2)) AS score FROM old)
        UPDATE agents a SET
            trust_score = next.score,
            status = CASE WHEN next.score <= 0 AND a.status = 'active' THEN 'suspended'
                          ELSE a.status END,
            autonomy_blocked = CASE
                WHEN $3::float8 IS NULL THEN false
                WHEN next.score < $3 THEN true
                WHEN next.score >= coalesce($4::float8, $3) THEN false
                ELSE a.autonomy_blocked END,
            updated_at = now()
        FROM old, next WHERE a.agent_id = $1
        RETURNING old.trust_score AS old_score, next.score AS new_score,
                  old.status AS old_status, a.status AS new_status, a.autonomy_blocked
        """,
        change.agent_id,
        change.delta,
        change.minimum_score,
        change.recovery_threshold,
    )
    if record is None:
        return None
    return TrustUpdate(
        record["old_score"],
        record["new_score"],
        record["old_status"] == "active" and record["new_status"] == "suspended",
        record["autonomy_blocked"],
    )


async def restore_agent(conn: Connection, agent_id: str, score: float) -> None:
    """Active again at `score`, autonomy unblocked (inside the caller's transaction)."""
    await conn.execute(
        "UPDATE agents SET status = 'active', trust_score = $2, autonomy_blocked = false,"
        " updated_at = now() WHERE agent_id = $1 AND status = 'suspended'",
        agent_id,
        score,
    )


def _record(record: asyncpg.Record) -> AgentRecord:
    return AgentRecord(
        _info(record),
        record["public_key_pem"],
        record["key_algorithm"],
        record["previous_public_key_pem"],
        record["previous_key_valid_until"],
    )


def _info(record: asyncpg.Record) -> AgentInfo:
    return AgentInfo(
        agent_id=record["agent_id"],
        display_name=record["display_name"],
        role=record["role"],
        owner=record["owner"],
        trust_score=record["trust_score"],
        status=AgentStatus(record["status"]),
        autonomy_blocked=record["autonomy_blocked"],
    )
