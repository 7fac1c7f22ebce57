"""make_grant in an activity context, on real Postgres: the grant and its `grant_made` row
written once per run, and a `when` that is not CEL refused for good with nothing stored."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from proctor.contract import step_key
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore
from proctor_server.activities.grants import INVALID_GRANT, GrantActivities
from tests.helpers.grants import grant_draft


@pytest.fixture
def audit(db: asyncpg.Pool) -> AuditLog:
    return AuditLog(db)


@pytest.fixture
def activities(audit: AuditLog) -> GrantActivities:
    return GrantActivities(GrantStore(audit.pool, audit))


async def test_the_grant_and_its_row_are_written_once_per_run(
    activities: GrantActivities, audit: AuditLog
) -> None:
    draft = grant_draft(max_uses=2, when="params.amount <= 600", approvers=("a@x.io", "b@x.io"))

    first = await ActivityEnvironment().run(activities.make_grant, draft)
    retried = await ActivityEnvironment().run(activities.make_grant, draft)

    assert retried == first
    assert first.grant_id == draft.grant_id
    (row,) = [row async for row in audit.rows()]
    assert row.seq == first.audit_seq
    assert row.idempotency_key == step_key(draft.workflow_id, draft.run_id, "grant")
    assert (row.event_type, row.actor) == ("grant_made", "a@x.io,b@x.io")
    assert (row.agent_id, row.action, row.workflow_id) == (
        "agent-refunds",
        "refund",
        draft.workflow_id,
    )
    for expected in (draft.grant_id, "params.amount <= 600", "key-a@x.io", '"max_uses":2'):
        assert expected in row.payload
    stored = await activities.store.get(draft.grant_id)
    assert stored is not None
    assert (stored.rule_id, stored.max_uses, stored.made_by) == ("refunds", 2, ("a@x.io", "b@x.io"))
    assert (await audit.verify()).intact


async def test_a_when_that_is_not_cel_is_refused_for_good(
    activities: GrantActivities, audit: AuditLog
) -> None:
    draft = grant_draft(when="params.amount <=")

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.make_grant, draft)

    assert refused.value.type == INVALID_GRANT
    assert refused.value.non_retryable
    assert "\n" not in refused.value.message
    assert draft.grant_id in refused.value.message
    assert await activities.store.get(draft.grant_id) is None
    assert [row async for row in audit.rows()] == []


async def test_a_when_that_is_not_boolean_is_refused(activities: GrantActivities) -> None:
    draft = grant_draft(when="params.amount + 1")

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.make_grant, draft)

    assert "not a boolean" in refused.value.message
