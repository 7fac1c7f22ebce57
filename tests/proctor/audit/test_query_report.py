"""Query and compliance reports over the rows real governed actions wrote."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus
from proctor.audit.query import AuditFilter, query_audit
from proctor.audit.report import build_report, render_html, render_json, render_markdown
from proctor.audit.verify import verify_ledger
from proctor.db import connect_pool
from proctor.stores.audit_log import AuditLog
from tests.helpers.database import DatabaseFactory
from tests.helpers.harness import Harness, harness


@pytest.fixture
async def own(
    dev_server: WorkflowEnvironment, make_database: DatabaseFactory
) -> AsyncIterator[Harness]:
    """A harness on a database of its own, so totals are exactly this test's."""
    pool = await connect_pool(await make_database(), max_size=8)
    try:
        async with harness(dev_server.client, pool) as gov:
            yield gov
    finally:
        await pool.close()


async def test_query_filters_and_a_soc2_report(own: Harness) -> None:
    gov = own
    start = datetime.now(UTC) - timedelta(seconds=1)
    ann, bob = await gov.new_agent(), await gov.new_agent()

    def noop(params: dict[str, object]) -> str:
        return "done"

    assert (await gov.proctor.execute(ann, "read:orders", {"n": 1}, handler=noop)).ok
    assert (
        await gov.proctor.execute(bob, "delete:customer", {"id": 7}, handler=noop)
    ).status is ActionStatus.DENIED
    for agent, approver, approve in (
        (ann, "alice@example.com", True),
        (bob, "bob@example.com", False),
    ):
        request_id = f"refund-{agent.agent_id}"
        task = asyncio.create_task(
            gov.proctor.execute(
                agent, "refund_requests", {"orderId": 3}, handler=noop, request_id=request_id
            )
        )
        await gov.wait_for_stage(f"action-{request_id}", "awaiting_approval")
        await gov.vote(f"action-{request_id}", "mallory@example.com", approve=True)
        await gov.vote(f"action-{request_id}", approver, approve=approve)
        await asyncio.wait_for(task, 30)
    end = datetime.now(UTC) + timedelta(seconds=1)

    pool = gov.pool
    denied = await query_audit(pool, AuditFilter(effect="deny"))
    assert [(e.agent_id, e.action) for e in denied.entries] == [(bob.agent_id, "delete:customer")]
    anns = await query_audit(
        pool, AuditFilter(agent=ann.agent_id, action="refund*", event_type="vote")
    )
    assert [e.actor for e in anns.entries] == ["mallory@example.com", "alice@example.com"]
    first = await query_audit(pool, AuditFilter(agent=ann.agent_id, limit=2))
    assert len(first.entries) == 2 and first.next_after_seq == first.entries[-1].seq
    rest = await query_audit(
        pool, AuditFilter(agent=ann.agent_id, after_seq=first.next_after_seq, limit=1000)
    )
    assert rest.next_after_seq is None
    assert {e.seq for e in first.entries}.isdisjoint(e.seq for e in rest.entries)
    assert not (await query_audit(pool, AuditFilter(until=start))).entries

    integrity = await verify_ledger(AuditLog(pool), keys={})
    report = await build_report(pool, "soc2", start, end, integrity)
    totals = report.totals
    assert (totals["decisions"], totals["allowed"], totals["denied"]) == (4, 1, 1)
    assert (totals["escalations"], totals["approvals"], totals["rejections"]) == (2, 1, 1)
    assert totals["refused_votes"] == 2 and totals["completed"] == 2
    assert report.median_seconds_to_decision is not None
    assert 0 < report.median_seconds_to_decision < 30
    by_approver = {a.approver: a for a in report.approvers}
    assert by_approver["alice@example.com"].approved == 1
    assert by_approver["bob@example.com"].denied == 1
    assert by_approver["mallory@example.com"].refused_votes == 2
    assert [v.agent_id for v in report.violations] == [bob.agent_id]
    assert {t.agent_id for t in report.trust} == {ann.agent_id, bob.agent_id}
    assert report.integrity.intact and "CC6.3" in report.controls["approvals"]

    markdown = render_markdown(report)
    assert "## Approvals by approver" in markdown
    assert "| alice@example.com | 1 | 0 | 0 |" in markdown
    assert json.loads(render_json(report))["totals"]["denied"] == 1
    page = render_html(report)
    assert page.startswith("<!doctype html>") and "<td>mallory@example.com</td>" in page
