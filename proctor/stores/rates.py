"""Rate limits over sliding windows, exact under concurrency: one lock per agent, count and
record in one transaction, idempotent per request (a retried activity counts once)."""

from __future__ import annotations

import asyncpg

from proctor.models import RateCheck, RateLimit, RateVerdict

RATE_LOCK_CLASS = 0x7261  # "ra": advisory-lock namespace, apart from the chain lock
RETENTION_SECONDS = 8 * 86400  # longer than the longest window (a week)

_COUNT = {
    "actions": "TRUE",
    "escalations": "escalated",
    "matching": "position($3 in lower(action)) > 0",
}


def counts_toward(limit: RateLimit, check: RateCheck) -> bool:
    if limit.counts == "escalations":
        return check.escalated
    if limit.counts == "matching":
        return (limit.match or "") in check.action.lower()
    return True


class RateStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def admit(self, check: RateCheck) -> RateVerdict:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", RATE_LOCK_CLASS, check.agent_id
            )
            if await conn.fetchval(
                "SELECT 1 FROM rate_admissions WHERE agent_id = $1 AND request_id = $2",
                check.agent_id,
                check.request_id,
            ):
                return RateVerdict(admitted=True)
            for limit in check.limits:
                if not counts_toward(limit, check):
                    continue
                used = await conn.fetchval(
                    "SELECT count(*) FROM rate_admissions WHERE agent_id = $1"
                    " AND admitted_at > now() - make_interval(secs => $2)"
                    f" AND {_COUNT[limit.counts]}",
                    *(
                        check.agent_id,
                        limit.window_seconds,
                        *((limit.match or "",) if limit.counts == "matching" else ()),
                    ),
                )
                if used >= limit.limit:
                    return RateVerdict(
                        admitted=False,
                        exceeded=(f"{limit.name} ({limit.limit}) reached in {limit.policy_file}"),
                    )
            await conn.execute(
                "INSERT INTO rate_admissions (agent_id, request_id, action, escalated)"
                " VALUES ($1, $2, $3, $4)",
                check.agent_id,
                check.request_id,
                check.action,
                check.escalated,
            )
            await conn.execute(
                "DELETE FROM rate_admissions WHERE agent_id = $1"
                " AND admitted_at < now() - make_interval(secs => $2)",
                check.agent_id,
                float(RETENTION_SECONDS),
            )
        return RateVerdict(admitted=True)
