"""`proctor grants list|revoke` as a user runs them, on real Postgres: live grants only unless
--all, one agent's with --agent, each grant's status, and a revocation audited under --by; an
unknown id is one line and exit 1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from proctor.cli.grants import HEADERS, status, table
from proctor.models import AuditEvent, GrantDraft, StandingGrant
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore
from tests.helpers.cli import arun
from tests.helpers.grants import grant_draft

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
async def env(private_database: tuple[asyncpg.Pool, str], tmp_path: Path) -> dict[str, str]:
    return {"PROCTOR_DATABASE_URL": private_database[1], "PROCTOR_STATE_DIR": str(tmp_path)}


@pytest.fixture
async def audit(private_database: tuple[asyncpg.Pool, str]) -> AsyncIterator[AuditLog]:
    yield AuditLog(private_database[0])


async def stored(audit: AuditLog, draft: GrantDraft) -> StandingGrant:
    store = GrantStore(audit.pool, audit)
    event = AuditEvent(idempotency_key=f"{draft.grant_id}:made", event_type="grant_made")
    await store.make(draft, event)
    grant = await store.get(draft.grant_id)
    assert grant is not None
    return grant


def made(uses: int = 0, max_uses: int | None = None, **changes: object) -> StandingGrant:
    """A stored grant as the store returns it, for the pure rendering tests."""
    draft = grant_draft(max_uses=max_uses, expires_at=NOW + timedelta(hours=1))
    return StandingGrant(
        grant_id=draft.grant_id,
        agent_id=draft.request.agent_id,
        action=draft.request.action,
        rule_id=draft.scope.rule_id,
        made_at=NOW,
        expires_at=draft.expires_at,
        max_uses=max_uses,
        uses=uses,
        made_by=("alice@example.com",),
        workflow_id=draft.workflow_id,
        request=draft.request,
        votes=draft.votes,
    ).model_copy(update=changes)


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (made(), "live"),
        (made(uses=2, max_uses=3), "live"),
        (made(uses=3, max_uses=3), "used up"),
        (made(expires_at=NOW), "expired"),
        (made(uses=3, max_uses=3, revoked_at=NOW, revoked_by="bob"), "revoked"),
    ],
)
def test_the_status_says_what_ended_the_grant(grant: StandingGrant, expected: str) -> None:
    assert status(grant, NOW) == expected


def test_the_table_shows_uses_against_the_maximum_and_expiry_in_utc() -> None:
    limited = made(uses=1, max_uses=5, when="params.amount <= 600")
    unlimited = made(uses=4)

    header, first, second = table([limited, unlimited], NOW)

    assert header.split("  ")[0].strip() == HEADERS[0]
    assert "EXPIRES (UTC)" in header
    assert first.split() == [
        limited.grant_id,
        "agent-refunds",
        "refund",
        "refunds",
        "alice@example.com",
        "2026-12-03",
        "11:00:00",
        "1/5",
        "params.amount",
        "<=",
        "600",
        "live",
    ]
    assert second.split()[7:] == ["4", "-", "live"]


async def test_list_shows_live_grants_unless_all_and_filters_by_agent(
    env: dict[str, str], audit: AuditLog, tmp_path: Path
) -> None:
    live = await stored(audit, grant_draft(max_uses=2, when="params.amount <= 600"))
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = await stored(audit, grant_draft(expires_at=past))
    other = await stored(audit, grant_draft(agent_id="agent-other"))

    listed = await arun(["grants", "list"], env, tmp_path)
    everything = await arun(["grants", "list", "--all", "--json"], env, tmp_path)
    mine = await arun(["grants", "list", "--agent", "agent-other", "--json"], env, tmp_path)

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "AGENT"]
    assert {line.split()[0] for line in lines[1:]} == {live.grant_id, other.grant_id}
    assert "0/2" in next(line for line in lines if line.startswith(live.grant_id))
    documents = {d["grant_id"]: d for d in json.loads(everything.stdout)}
    assert set(documents) == {live.grant_id, expired.grant_id, other.grant_id}
    assert documents[expired.grant_id]["status"] == "expired"
    assert documents[live.grant_id]["when"] == "params.amount <= 600"
    assert "request" not in documents[live.grant_id]
    assert [d["grant_id"] for d in json.loads(mine.stdout)] == [other.grant_id]


async def test_an_empty_list_says_so(env: dict[str, str], tmp_path: Path) -> None:
    listed = await arun(["grants", "list"], env, tmp_path)

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "no live grants (--all shows ended ones)"


async def test_revoke_ends_the_grant_and_audits_who_and_why(
    env: dict[str, str], audit: AuditLog, tmp_path: Path
) -> None:
    grant = await stored(audit, grant_draft())
    command = ["grants", "revoke", grant.grant_id, "--by", "bob@example.com", "--reason", "done"]

    revoked = await arun(command, env, tmp_path)
    again = await arun(command, env, tmp_path)
    listed = await arun(["grants", "list", "--all"], env, tmp_path)

    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"revoked {grant.grant_id}: by bob@example.com")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"already revoked: {grant.grant_id} by bob@example.com")
    assert listed.stdout.splitlines()[1].split()[-1] == "revoked"
    rows = [row async for row in audit.rows() if row.event_type == "grant_revoked"]
    assert len(rows) == 1
    assert rows[0].actor == "bob@example.com"
    assert json.loads(rows[0].payload)["reason"] == "done"
    assert (await audit.verify()).intact


@pytest.mark.parametrize("grant_id", ["g-unknown", "not a grant id; DROP TABLE"])
async def test_revoking_an_unknown_grant_is_one_line_and_exit_1(
    env: dict[str, str], tmp_path: Path, grant_id: str
) -> None:
    done = await arun(["grants", "revoke", grant_id, "--by", "bob", "--reason", "r"], env, tmp_path)

    assert done.returncode == 1
    assert done.stderr.startswith(f"error: no grant {grant_id!r}")
    assert done.stderr.count("\n") == 1
    assert done.stdout == ""
