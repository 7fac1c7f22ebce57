"""If the audit log cannot be written, the action does not run."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import GovernanceError
from proctor.db import connect_pool
from tests.helpers.database import DatabaseFactory
from tests.helpers.harness import harness


async def test_action_does_not_run_when_audit_append_is_refused(
    dev_server: WorkflowEnvironment, make_database: DatabaseFactory
) -> None:
    pool = await connect_pool(await make_database())
    try:
        await pool.execute("""
            CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit storage refused' USING ERRCODE = 'insufficient_privilege';
            END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON audit_log
                FOR EACH ROW EXECUTE FUNCTION refuse_insert();
        """)
        calls: list[dict[str, Any]] = []

        async def handler(params: dict[str, Any]) -> str:
            calls.append(params)
            return "ran"

        async with harness(dev_server.client, pool) as gov:
            key = await gov.new_agent()
            with pytest.raises(GovernanceError, match="audit append refused"):
                await gov.proctor.execute(key, "read:orders", {}, handler=handler)

        assert calls == []
        assert await pool.fetchval("SELECT count(*) FROM audit_log") == 0
    finally:
        await pool.close()
