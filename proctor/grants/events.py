"""The audit row of a grant's revocation, the same whoever ends it (an operator, or the policy
version that removed its rule)."""

from __future__ import annotations

from proctor.models import AuditEvent, StandingGrant


def revoked_event(
    grant: StandingGrant, *, actor: str, reason: str, policy_version: str | None = None
) -> AuditEvent:
    """Keyed by the grant alone: a grant is revoked once, whoever does it (a second worker
    sweeping the same version finds it revoked and writes nothing)."""
    payload: dict[str, object] = {
        "grant_id": grant.grant_id,
        "rule_id": grant.rule_id,
        "reason": reason,
        "uses": grant.uses,
    }
    if policy_version is not None:
        payload["policy_version"] = policy_version
    return AuditEvent(
        idempotency_key=f"grant-revoked:{grant.grant_id}",
        event_type="grant_revoked",
        workflow_id=grant.workflow_id,
        agent_id=grant.agent_id,
        action=grant.action,
        actor=actor,
        payload=payload,
    )
