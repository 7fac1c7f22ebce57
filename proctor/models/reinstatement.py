"""Bringing a suspended agent back: the request, the plan the workflow reads, the result."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from proctor.models.approval import RecordedVote
from proctor.models.base import Frozen
from proctor.models.identity import AgentInfo


class ReinstatementRequest(Frozen):
    agent_id: str
    requested_by: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=4000)
    restore_score: float | None = Field(default=None, ge=1, le=100)
    """Default: the agent's recovery threshold from policy (else its minimum score, else 50)."""
    timeout_seconds: float = Field(default=7 * 86400.0, gt=0)


class ReinstatementPlan(Frozen):
    """What the workflow needs, read once from Postgres and policy by an activity."""

    agent: AgentInfo | None
    approvers: tuple[str, ...] = ()
    restore_score: float = 50.0
    problem: str | None = None
    """Why there is nothing to reinstate (unknown agent, not suspended)."""


class Reinstatement(Frozen):
    agent_id: str
    workflow_id: str
    approver: str
    score: float
    note: str | None = None


class ReinstatementOutcome(Frozen):
    status: Literal["reinstated", "denied", "expired", "not_applicable"]
    reason: str
    votes: tuple[RecordedVote, ...] = ()
    score: float | None = None
