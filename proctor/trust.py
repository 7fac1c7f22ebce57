"""Trust arithmetic, pure: how much an outcome moves an agent's score."""

from __future__ import annotations

from proctor.models import ActionStatus

OUTCOME_DELTAS: dict[ActionStatus, float] = {
    ActionStatus.COMPLETED: +1.0,
    ActionStatus.FAILED: -5.0,
    ActionStatus.REJECTED: -3.0,
    ActionStatus.TIMED_OUT: -1.0,
}


def outcome_delta(status: ActionStatus) -> float | None:
    """The score change for a final status; None when the status says nothing of the agent."""
    return OUTCOME_DELTAS.get(status)
