"""Standing grants in Postgres: made, used and revoked each with its audit row, in one
transaction under the chain lock, so the ledger says exactly what the table did.

Lock order, everywhere: a grant's row (FOR UPDATE) before the chain lock, so a use racing a
revocation waits instead of deadlocking; `make` takes only the chain lock (its row is new).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection
from datetime import datetime

import asyncpg
import pydantic

from proctor.errors import ConflictError
from proctor.models import AuditEvent, GrantDraft, GrantReceipt, StandingGrant, Vote
from proctor.models.request import ActionRequest
from proctor.stores.audit_log import AuditLog, append_locked, lock_chain
from proctor.stores.connection import Connection

_COLUMNS = (
    "grant_id, agent_id, action, rule_id, policy_file, made_at, expires_at, condition,"
    " max_uses, uses, made_by, workflow_id, request, votes, revoked_at, revoked_by,"
    " revoke_reason"
)


def _live(at: str) -> str:
    """The condition a grant that may still allow a request at time `at` (SQL) meets."""
    return f"revoked_at IS NULL AND expires_at > {at} AND (max_uses IS NULL OR uses < max_uses)"


LIVE_FOR = (
    f"SELECT {_COLUMNS} FROM standing_grants WHERE agent_id = $2 AND action = $3"
    f" AND {_live('$1')} ORDER BY expires_at, grant_id"
)
"""The request path's read ($1 the time, $2 the agent, $3 the action): the partial index
`standing_grants_live` answers it in order, with no sort (a test checks the plan)."""
_VOTES = pydantic.TypeAdapter(tuple[Vote, ...])


class GrantConflict(ConflictError):
    """A grant id already names a grant made by another workflow run: a bug, never ignored."""


class GrantStore:
    def __init__(self, pool: asyncpg.Pool, audit: AuditLog) -> None:
        self.pool = pool
        self.audit = audit

    async def make(self, draft: GrantDraft, event: AuditEvent) -> GrantReceipt:
        """Store the grant and its `grant_made` row together; a retry (same grant id, same
        run) writes nothing and returns the first receipt."""
        event = await self.audit.protect(event)
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_chain(conn)
            known = await conn.fetchrow(
                "SELECT workflow_id, run_id, audit_seq FROM standing_grants WHERE grant_id = $1",
                draft.grant_id,
            )
            if known is not None:
                return _receipt_of_retry(draft, known)
            receipt = await append_locked(conn, event)
            await _insert(conn, draft, receipt.seq)
        return GrantReceipt(grant_id=draft.grant_id, audit_seq=receipt.seq)

    async def live_for(self, agent_id: str, action: str, at: datetime) -> list[StandingGrant]:
        """The grants that may allow this agent's action at `at` (one indexed read: the
        request path), soonest to expire first."""
        records = await self.pool.fetch(LIVE_FOR, at, agent_id, action)
        return [_grant_of(record) for record in records]

    async def use(self, grant_id: str, *, workflow_id: str, run_id: str, event: AuditEvent) -> bool:
        """Count one use by this run and append its `grant_used` row, if the grant is still
        live by Postgres' clock; True also when this run already used it (a retry)."""
        event = await self.audit.protect(event)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await _lock_grant(conn, grant_id):
                return False
            if await conn.fetchval(
                "SELECT 1 FROM grant_uses WHERE grant_id = $1 AND workflow_id = $2 AND run_id = $3",
                grant_id,
                workflow_id,
                run_id,
            ):
                return True
            if not await conn.fetchval(
                f"SELECT 1 FROM standing_grants WHERE grant_id = $1 AND {_live('now()')}",
                grant_id,
            ):
                return False
            receipt = await append_locked(conn, event)
            await conn.execute(
                "UPDATE standing_grants SET uses = uses + 1 WHERE grant_id = $1", grant_id
            )
            await conn.execute(
                "INSERT INTO grant_uses (grant_id, workflow_id, run_id, audit_seq)"
                " VALUES ($1, $2, $3, $4)",
                grant_id,
                workflow_id,
                run_id,
                receipt.seq,
            )
        return True

    async def get(self, grant_id: str) -> StandingGrant | None:
        record = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM standing_grants WHERE grant_id = $1", grant_id
        )
        return None if record is None else _grant_of(record)

    async def revoke(
        self, grant_id: str, *, by: str, reason: str, event: AuditEvent
    ) -> StandingGrant | None:
        """End the grant now and append its `grant_revoked` row; None if there is no such
        grant, and an already revoked grant is returned unchanged (nothing written)."""
        grant, _ = await self._revoke(grant_id, by=by, reason=reason, event=event)
        return grant

    async def revoke_rules_removed(
        self,
        rules_in_force: Collection[str],
        *,
        by: str,
        reason: str,
        event_for: Callable[[StandingGrant], AuditEvent],
    ) -> builtins.list[str]:
        """Revoke every live grant whose rule is no longer in force (a grant never outlives
        the policy that allowed it), each with its own audit row; the ids revoked now."""
        records = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM standing_grants WHERE {_live('now()')}"
            " AND NOT (rule_id = ANY($1::text[])) ORDER BY grant_id",
            builtins.list(rules_in_force),
        )
        revoked: builtins.list[str] = []
        for grant in (_grant_of(record) for record in records):
            _, changed = await self._revoke(
                grant.grant_id, by=by, reason=reason, event=event_for(grant)
            )
            if changed:
                revoked.append(grant.grant_id)
        return revoked

    async def _revoke(
        self, grant_id: str, *, by: str, reason: str, event: AuditEvent
    ) -> tuple[StandingGrant | None, bool]:
        """The grant after revocation and whether this call revoked it."""
        event = await self.audit.protect(event)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await _lock_grant(conn, grant_id):
                return None, False
            current = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM standing_grants WHERE grant_id = $1", grant_id
            )
            assert current is not None
            if current["revoked_at"] is not None:
                return _grant_of(current), False
            await append_locked(conn, event)
            record = await conn.fetchrow(
                "UPDATE standing_grants SET revoked_at = now(), revoked_by = $2,"
                f" revoke_reason = $3 WHERE grant_id = $1 RETURNING {_COLUMNS}",
                grant_id,
                by,
                reason,
            )
        assert record is not None
        return _grant_of(record), True

    async def list(
        self,
        *,
        agent_id: str | None = None,
        include_ended: bool = False,
        at: datetime | None = None,
    ) -> builtins.list[StandingGrant]:
        """Grants (of one agent, when given), soonest to expire first: only those live at
        `at` (Postgres' clock by default) unless `include_ended`."""
        records = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM standing_grants"
            " WHERE ($2::text IS NULL OR agent_id = $2)"
            f" AND ($3 OR ({_live('COALESCE($1, now())')})) ORDER BY expires_at, grant_id",
            at,
            agent_id,
            include_ended,
        )
        return [_grant_of(record) for record in records]


async def _lock_grant(conn: Connection, grant_id: str) -> bool:
    """Lock the grant's row until the transaction ends; False if there is none."""
    found = await conn.fetchval(
        "SELECT 1 FROM standing_grants WHERE grant_id = $1 FOR UPDATE", grant_id
    )
    return found is not None


async def _insert(conn: Connection, draft: GrantDraft, audit_seq: int) -> None:
    await conn.execute(
        "INSERT INTO standing_grants (grant_id, agent_id, action, rule_id, policy_file,"
        " made_at, expires_at, condition, max_uses, made_by, workflow_id, run_id, request,"
        " votes, audit_seq) VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9, $10, $11,"
        " $12::json, $13::json, $14)",
        draft.grant_id,
        draft.request.agent_id,
        draft.request.action,
        draft.scope.rule_id,
        draft.policy_file,
        draft.expires_at,
        draft.scope.when,
        draft.scope.max_uses,
        [vote.approver for vote in draft.votes],
        draft.workflow_id,
        draft.run_id,
        draft.request.model_dump_json(),
        _VOTES.dump_json(draft.votes).decode(),
        audit_seq,
    )


def _receipt_of_retry(draft: GrantDraft, known: asyncpg.Record) -> GrantReceipt:
    if (known["workflow_id"], known["run_id"]) != (draft.workflow_id, draft.run_id):
        raise GrantConflict(
            f"grant id {draft.grant_id!r} was already made by run {known['run_id']!r}"
            f" of workflow {known['workflow_id']!r}"
        )
    return GrantReceipt(grant_id=draft.grant_id, audit_seq=known["audit_seq"])


def _grant_of(record: asyncpg.Record) -> StandingGrant:
    return StandingGrant(
        grant_id=record["grant_id"],
        agent_id=record["agent_id"],
        action=record["action"],
        rule_id=record["rule_id"],
        policy_file=record["policy_file"],
        made_at=record["made_at"],
        expires_at=record["expires_at"],
        when=record["condition"],
        max_uses=record["max_uses"],
        uses=record["uses"],
        made_by=tuple(record["made_by"]),
        workflow_id=record["workflow_id"],
        request=ActionRequest.model_validate_json(record["request"]),
        votes=_VOTES.validate_json(record["votes"]),
        revoked_at=record["revoked_at"],
        revoked_by=record["revoked_by"],
        revoke_reason=record["revoke_reason"],
    )
