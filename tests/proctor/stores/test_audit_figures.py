"""A period's figures on real Postgres: each aggregate counts what it says, inside the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proctor.models import AuditEvent
from proctor.stores.audit_figures import AgentLine, ApproverLine, TrustLine, period_figures
from proctor.stores.audit_log import AuditLog


def event(key: str, event_type: str, **fields: object) -> AuditEvent:
    return AuditEvent.model_validate(
        {"idempotency_key": key, "event_type": event_type, "payload": {}} | fields
    )


async def test_figures_of_a_period(audit: AuditLog) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    allow = {"decision": {"effect": "allow"}}
    await audit.append_many(
        [
            event("1", "decided", workflow_id="w1", agent_id="ann", payload=allow),
            event(
                "2",
                "decided",
                workflow_id="w2",
                agent_id="bob",
                payload={"decision": {"effect": "deny"}},
            ),
            event("3", "escalated", workflow_id="w1", agent_id="ann"),
            event(
                "4",
                "vote",
                workflow_id="w1",
                actor="eve",
                payload={"accepted": False, "approve": True},
            ),
            event(
                "5",
                "vote",
                workflow_id="w1",
                actor="cat",
                payload={"accepted": True, "approve": True},
            ),
            event(
                "6", "outcome", workflow_id="w1", agent_id="ann", payload={"status": "completed"}
            ),
            event("7", "trust_changed", agent_id="bob", payload={"delta": -5.0, "new_score": 95.0}),
            event(
                "8", "trust_changed", agent_id="bob", payload={"delta": -10.0, "new_score": 85.0}
            ),
            event("9", "identity_refused", agent_id="zed"),
        ]
    )
    end = datetime.now(UTC) + timedelta(seconds=1)

    figures = await period_figures(audit.pool, start, end)

    totals = figures.totals
    assert (totals["decisions"], totals["allowed"], totals["denied"]) == (2, 1, 1)
    assert (totals["escalations"], totals["approvals"], totals["refused_votes"]) == (1, 1, 1)
    assert (totals["completed"], totals["identity_refused"], totals["failed"]) == (1, 1, 0)
    assert figures.seconds_to_decision is not None and 0 <= figures.seconds_to_decision < 5
    assert figures.approvers == [
        ApproverLine(approver="cat", approved=1, denied=0, refused_votes=0),
        ApproverLine(approver="eve", approved=0, denied=0, refused_votes=1),
    ]
    assert figures.violations == [
        AgentLine(agent_id="bob", denied=1, identity_refused=0, failed=0),
        AgentLine(agent_id="zed", denied=0, identity_refused=1, failed=0),
    ]
    assert figures.trust == [
        TrustLine(agent_id="bob", changes=2, net_delta=-15.0, last_score=85.0, suspended=0)
    ]

    before = await period_figures(audit.pool, start - timedelta(days=1), start)
    assert before.totals["decisions"] == 0 and before.seconds_to_decision is None
    assert not (before.approvers or before.violations or before.trust)
