"""Trust arithmetic, pure: how much an outcome or a refusal moves an agent's score."""

from __future__ import annotations

from proctor.models import ActionStatus, TrustChange, TrustPolicy

DEFAULTS = TrustPolicy()


def outcome_delta(status: ActionStatus, policy: TrustPolicy | None = None) -> float | None:
    """The score change for a final status; None when the status says nothing of the agent."""
    weights = policy or DEFAULTS
    return {
        ActionStatus.COMPLETED: weights.success,
        ActionStatus.FAILED: weights.failure,
        ActionStatus.REJECTED: weights.rejected,
        ActionStatus.TIMED_OUT: weights.timed_out,
    }.get(status)


def trust_change(
    agent_id: str, delta: float | None, cause: str, policy: TrustPolicy | None
) -> TrustChange | None:
    if delta is None or delta == 0:
        return None
    weights = policy or DEFAULTS
    return TrustChange(
        agent_id=agent_id,
        delta=delta,
        cause=cause,
        minimum_score=weights.minimum_score,
        recovery_threshold=weights.recovery_threshold,
    )
