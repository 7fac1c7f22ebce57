"""Who an agent is to Proctor: its standing, its trust settings, and the identity verdict."""

from __future__ import annotations

from enum import StrEnum

from proctor.models.base import Frozen
from proctor.models.delegation import DelegationView


class AgentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class AgentInfo(Frozen):
    """What policies and approvers see of an agent (never its key)."""

    agent_id: str
    display_name: str
    role: str
    owner: str
    trust_score: float
    status: AgentStatus
    autonomy_blocked: bool = False
    """Fell below a policy's minimum score and has not yet climbed back to its recovery
    threshold: what would be allowed is escalated (or denied) meanwhile."""


class TrustPolicy(Frozen):
    """The trust settings in force for one agent, resolved from its policy files."""

    success: float = 1.0
    failure: float = -5.0
    refused_request: float = -10.0
    rejected: float = -3.0
    timed_out: float = -1.0
    minimum_score: float | None = None
    recovery_threshold: float | None = None


class TrustChange(Frozen):
    agent_id: str
    delta: float
    cause: str
    minimum_score: float | None = None
    recovery_threshold: float | None = None


class IdentityVerdict(Frozen):
    verified: bool
    agent: AgentInfo | None = None
    """Set for a verified request, and for a refused one whose agent is registered."""
    trust: TrustPolicy | None = None
    """The agent's trust settings, to charge a refusal (None: unknown agent)."""
    refusal: str | None = None
    """Machine-readable refusal code: unknown_agent, revoked_agent, bad_signature, …"""
    detail: str | None = None
    request_digest: str
    """SHA-256 of the canonical signed request: approvals are bound to it."""
    provable: bool = False
    """The request carries a valid signature of one of the agent's keys, so a refusal is the
    agent's own doing and may cost it trust. Forged, unsigned and copied requests never do."""
    public_keys: tuple[str, ...] = ()
    """The agent's public keys valid at receipt: permission asks and handler reports must be
    signed by one, and no vote ever may."""
    source: str | None = None
    """Who started the workflow (Temporal's client identity), recorded for refused requests."""
    delegation: DelegationView | None = None
    """The verified delegation chain of a verified request made on someone's behalf."""
    executor_keys: tuple[str, ...] = ()
    """When the request names an execution service: its public keys valid at receipt, which
    then sign the permission ask and the report instead of the agent's."""
