"""Standing-grant drafts as the workflow writes them, for the store, activity, CLI and sweeper
tests (the store checks no signature: the votes here are not signed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from proctor.models import (
    ActionRequest,
    ExecutionMode,
    ExecutionSpec,
    GrantDraft,
    GrantScope,
    Vote,
)
from proctor.signing import AgentKey

NOW = datetime.now(UTC)
AGENT_KEY = AgentKey.generate("agent-refunds")


def signed_request(agent_id: str = "agent-refunds", action: str = "refund") -> ActionRequest:
    """A signed request whose params include a float JSONB would have turned into an int."""
    key = AGENT_KEY if agent_id == AGENT_KEY.agent_id else AgentKey.generate(agent_id)
    return key.new_request(
        action, {"amount": 1e20, "ratio": 1.0}, ExecutionSpec(mode=ExecutionMode.HANDLER)
    )


def grant_draft(
    *,
    agent_id: str = "agent-refunds",
    action: str = "refund",
    rule_id: str = "refunds",
    expires_at: datetime | None = None,
    max_uses: int | None = None,
    when: str | None = None,
    approvers: tuple[str, ...] = ("alice@example.com",),
) -> GrantDraft:
    """A draft as the workflow would write it (the store checks no signature)."""
    request = signed_request(agent_id, action)
    scope = GrantScope(rule_id=rule_id, duration_seconds=3600, when=when, max_uses=max_uses)
    votes = tuple(
        Vote(
            approver=name,
            approve=True,
            workflow_id=request.workflow_id,
            request_digest="d",
            signed_at=NOW,
            key_id=f"key-{name}",
            signature="s",
            grant=scope,
        )
        for name in approvers
    )
    return GrantDraft(
        grant_id=f"g-{uuid.uuid4().hex[:12]}",
        workflow_id=request.workflow_id,
        run_id=uuid.uuid4().hex,
        request=request,
        votes=votes,
        scope=scope,
        expires_at=expires_at or datetime.now(UTC) + timedelta(hours=1),
    )
