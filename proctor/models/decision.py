"""What policy decides about a request: the effect, escalation settings and rate limits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from proctor.models.base import Frozen, Jsonable
from proctor.models.delegation import DelegationView
from proctor.models.identity import AgentInfo, IdentityVerdict, TrustPolicy
from proctor.models.request import ActionRequest


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ESCALATE = "escalate"


class LadderTier(Frozen):
    after_seconds: float = Field(gt=0)
    approvers: tuple[str, ...]


class EscalationSettings(Frozen):
    approvers: tuple[str, ...]
    """Identities, plus `role:<name>` and `slack-group:<handle>` resolved at escalation."""
    quorum: int = Field(default=1, ge=1)
    timeout_seconds: float = Field(default=86400.0, gt=0)
    on_timeout: Literal["deny", "approve", "escalate"] = "deny"
    reminders_seconds: tuple[float, ...] = ()
    ladder: tuple[LadderTier, ...] = ()
    severity: Literal["low", "medium", "high", "critical"] | None = None
    channel: str | None = None
    """Slack channel for the approval request (else the configured default, if any)."""
    direct_messages: bool = True
    """Also DM each approver on Slack."""
    deny_vetoes: bool = True
    """One authorised deny ends the request; if False, it ends once quorum is unreachable."""
    grant_max_seconds: float | None = None
    """The longest standing grant an approval may make (`grant: {max: 8h}`); None: none."""
    owner_may_approve: bool = False
    """Separation of duties: by default the agent's owner can't approve its requests (the
    human who triggered the request never can)."""


APPROVER_REFERENCE_PREFIXES = ("role:", "slack-group:")
"""Approver names resolved when the request escalates (directory roles, Slack user groups)."""


def is_approver_reference(name: str) -> bool:
    return name.startswith(APPROVER_REFERENCE_PREFIXES)


class RateLimit(Frozen):
    """One `<what>_per_<unit>` limit from policy, as the rate activity enforces it."""

    name: str
    limit: int = Field(ge=1)
    window_seconds: float = Field(gt=0)
    counts: Literal["actions", "escalations", "matching"]
    match: str | None = None
    """For `matching`: the text an action must contain to count (e.g. `credit`)."""
    policy_file: str


class RateCheck(Frozen):
    agent_id: str
    request_id: str
    action: str
    escalated: bool
    limits: tuple[RateLimit, ...]


class RateVerdict(Frozen):
    admitted: bool
    exceeded: str | None = None
    """Why not: `credits_per_day (20) reached in billing-agent.yaml`."""


class Decision(Frozen):
    effect: Effect
    rule_id: str
    """The matched rule (or `default-deny`, `identity:<refusal>`)."""
    policy_file: str | None = None
    policy_version: str
    reason: str
    escalation: EscalationSettings | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    trust: TrustPolicy | None = None
    """None in decisions recorded before trust settings existed: the defaults apply."""
    also_matched: tuple[str, ...] = ()
    """The other rules of this effect that applied and were merged in (most specific first)."""


class PolicyQuery(Frozen):
    agent: AgentInfo
    action: str
    params: dict[str, Jsonable]
    """Loose: policy tests and `policy explain` build it from YAML (dates and all)."""
    request_id: str | None = None
    requested_at: datetime | None = None
    delegation: DelegationView = DelegationView()
    """The request's verified delegation chain (`request.delegation` in conditions)."""


class JudgeRequest(Frozen):
    """Identity, then policy, then rate admission, judged in one activity whose result is
    recorded in history before anything is written: a retried step writes the same thing."""

    request: ActionRequest
    workflow_id: str
    run_id: str
    received_at: datetime


class Judgement(Frozen):
    identity: IdentityVerdict
    decision: Decision | None = None
    """None when identity was refused."""
    judged_at: datetime
    """When the decision was made: an escalation's deadline and timers count from here."""
