"""Pydantic models for everything that crosses a process boundary.

Workflows, activities, the client and the CLI exchange only these types (through Temporal's
pydantic data converter), so a field added here is validated the same way everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

JsonValue = Any
"""A JSON-compatible value (dict / list / str / int / float / bool / None)."""

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
ACTION_PATTERN = r"^[A-Za-z0-9_.:/-][A-Za-z0-9_.:/*-]{0,199}$"


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields: boundaries should fail loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ESCALATE = "escalate"


class ActionStatus(StrEnum):
    COMPLETED = "completed"
    DENIED = "denied"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Stopped through Proctor (`proctor cancel`, or a cancellation request) before it ran."""
    TERMINATED = "terminated"
    """Ended outside Proctor (terminated or reset in Temporal): recorded by the reconciler."""
    UNKNOWN = "unknown"
    """A process took the permission to execute and never reported: it may or may not have
    run."""


class ExecutionMode(StrEnum):
    HANDLER = "handler"
    """The agent's own process runs the action once the workflow grants permission."""
    TOOL = "tool"
    """The workflow runs the action as an activity on the agent's task queue."""


class ExecutionSpec(Frozen):
    mode: ExecutionMode
    task_queue: str | None = None
    """For TOOL mode: the agent's task queue where the tool activity is registered."""
    timeout_seconds: float = Field(default=3600.0, gt=0)
    """HANDLER: how long the workflow waits for the agent's report once permitted.
    TOOL: the limit of one attempt of the tool activity."""
    max_attempts: int = Field(default=3, ge=1, le=100)
    """TOOL: attempts of the tool activity before the action counts as failed."""


class ActionRequest(Frozen):
    """What an agent asks to do. Every field but `signature` is covered by the signature."""

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    action: str = Field(pattern=r"^[A-Za-z0-9_.:/-]{1,200}$")
    params: dict[str, JsonValue] = Field(default_factory=dict)
    requested_at: datetime
    nonce: str = Field(min_length=16, max_length=128)
    execution: ExecutionSpec
    triggered_by: str | None = Field(default=None, min_length=1, max_length=256)
    """The human on whose behalf the agent acts, if any: never an approver of this request."""
    signature: str = Field(default="", max_length=4096)
    """Base64 signature over the RFC 8785 canonical JSON of `signing_payload()`."""

    @field_validator("requested_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("requested_at must carry a timezone")
        return value.astimezone(UTC)

    def signing_payload(self) -> dict[str, JsonValue]:
        """The exact document an agent signs: the whole request except the signature."""
        payload = self.model_dump(mode="json", exclude={"signature"})
        if payload["triggered_by"] is None:
            del payload["triggered_by"]  # requests signed before the field existed still verify
        return payload

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.request_id)


def workflow_id_for(request_id: str) -> str:
    return f"action-{request_id}"


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


class PolicyQuery(Frozen):
    agent: AgentInfo
    action: str
    params: dict[str, JsonValue]
    request_id: str | None = None
    requested_at: datetime | None = None


class Vote(Frozen):
    """One human's answer to an escalated request, as signalled to the workflow. It counts
    only if signed by the approver's own key or by the approval service named as `channel`."""

    approver: str = Field(min_length=1, max_length=256)
    approve: bool
    note: str | None = Field(default=None, max_length=4000)
    channel: str = Field(default="cli", min_length=1, max_length=64)
    request_digest: str | None = None
    """Must match the digest of the waiting request (binds a vote to one action)."""
    workflow_id: str = ""
    signed_at: datetime | None = None
    key_id: str = ""
    """Fingerprint of the signing key (SHA-256 of its SubjectPublicKeyInfo)."""
    signature: str = Field(default="", max_length=4096)

    def signing_payload(self) -> dict[str, JsonValue]:
        """What the signature covers: every field but the signature itself."""
        return self.model_dump(mode="json", exclude={"signature"})


class VoteKeyQuery(Frozen):
    approver: str
    channel: str


class VoteKeys(Frozen):
    """The trusted public keys that may sign one vote, read from the key directories."""

    approver: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()


class CancelRequest(Frozen):
    """`proctor cancel`: stop a governed action that has not started executing."""

    by: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=4000)


class RecordedVote(Frozen):
    vote: Vote
    accepted: bool
    reason: str
    at: datetime


class AuditEvent(Frozen):
    """One step to append to the audit chain; the key makes retries write nothing twice."""

    idempotency_key: str = Field(min_length=1, max_length=512)
    event_type: str
    workflow_id: str | None = None
    agent_id: str | None = None
    action: str | None = None
    actor: str | None = None
    payload: dict[str, JsonValue] = Field(default_factory=dict)


class AuditReceipt(Frozen):
    seq: int
    hash: str


class TrustChange(Frozen):
    agent_id: str
    delta: float
    cause: str
    minimum_score: float | None = None
    recovery_threshold: float | None = None


class OutcomeRecord(Frozen):
    """The final audit row and the trust change that go into one transaction."""

    event: AuditEvent
    trust: TrustChange | None = None


class ToolCall(Frozen):
    request_id: str
    action: str
    params: dict[str, JsonValue]


class ToolResult(Frozen):
    result: JsonValue = None


class PermissionRequest(Frozen):
    """Sent by the agent's client to ask whether (and when) it may run its handler; signed by
    the agent's key, so no other process can take the permission."""

    client_id: str = Field(min_length=1, max_length=128)
    workflow_id: str = ""
    signature: str = Field(default="", max_length=4096)

    def signing_payload(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json", exclude={"signature"})


class Permission(Frozen):
    granted: bool
    claim_token: str | None = None
    """Present when granted: the report must carry it, so only one process executes."""
    status: ActionStatus | None = None
    """When not granted: the final status the action is heading to, if known."""
    reason: str = ""
    stage: str | None = None
    """Where the request stood when this answer was given (e.g. `executing`)."""


class HandlerReport(Frozen):
    """How the handler went; signed by the agent's key, so nobody else can report for it."""

    claim_token: str
    succeeded: bool
    result: JsonValue = None
    error: str | None = Field(default=None, max_length=8000)
    signature: str = Field(default="", max_length=4096)

    def signing_payload(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json", exclude={"signature"})


class GovernedActionInput(Frozen):
    request: ActionRequest


class PendingApproval(Frozen):
    """What `approvals list` shows of a waiting workflow (from a workflow query)."""

    workflow_id: str
    request_id: str
    agent_id: str
    action: str
    params: dict[str, JsonValue]
    rule_id: str
    reason: str
    approvers: tuple[str, ...]
    quorum: int
    approvals: tuple[str, ...]
    deadline: datetime
    request_digest: str
    denials: tuple[str, ...] = ()
    owner: str | None = None
    """The agent's owner (refused as approver unless the rule allows it)."""
    triggered_by: str | None = None
    """The human the agent acted for (always refused as approver)."""
    owner_may_approve: bool = False
    severity: str | None = None
    trust_score: float | None = None

    def refusal(self, approver: str) -> str | None:
        """Why `approver` may not vote on this request, or None if they may."""
        who = approver.strip().casefold()
        if self.triggered_by and who == self.triggered_by.casefold():
            return "self-approval: the request was made on this person's behalf"
        if who == self.agent_id.casefold() or (
            not self.owner_may_approve and self.owner and who == self.owner.casefold()
        ):
            return "self-approval: the agent's owner cannot decide its requests"
        if who not in {a.casefold() for a in self.approvers}:
            return "not an authorised approver for this rule"
        if who in {a.casefold() for a in (*self.approvals, *self.denials)}:
            return "this approver already voted"
        return None


class SlackMessageRef(Frozen):
    """One Slack message about a request (to update when it is decided)."""

    channel: str
    ts: str
    approver: str | None = None
    """The approver it was sent to directly; None for a channel post."""


class ApprovalCard(Frozen):
    """What an approval message shows: the request, the rule, the deadline."""

    workflow_id: str
    request_id: str
    agent_id: str
    action: str
    params: dict[str, JsonValue]
    """Raw: the notifier redacts them with the policy's audit rules before sending."""
    rule_id: str
    reason: str
    trust_score: float
    deadline: datetime
    quorum: int
    approvers: tuple[str, ...]
    request_digest: str
    severity: str | None = None
    triggered_by: str | None = None


class ApprovalNotice(Frozen):
    """Ask approvers: a channel post and/or a DM to each of `recipients`."""

    card: ApprovalCard
    recipients: tuple[str, ...]
    channel: str | None = None
    direct_messages: bool = True
    tier: int = 0
    """0: the first request; N: ladder tier N joined (the earlier messages get a note)."""
    earlier: tuple[SlackMessageRef, ...] = ()


class ReminderNotice(Frozen):
    card: ApprovalCard
    pending: tuple[str, ...]
    number: int
    messages: tuple[SlackMessageRef, ...] = ()


class NotifyResult(Frozen):
    messages: tuple[SlackMessageRef, ...] = ()
    undelivered: tuple[str, ...] = ()
    """Recipients that couldn't be reached (no Slack account found, channel missing, ...),
    each with the reason: `alice@example.com: users_not_found`."""
    skipped: str | None = None
    """Why nothing was sent at all (Slack not configured)."""


ClosedAs = Literal["approved", "rejected", "timed_out", "cancelled"]


class ApprovalClosed(Frozen):
    """The request is decided: every message about it shows the outcome, without buttons."""

    card: ApprovalCard
    messages: tuple[SlackMessageRef, ...]
    status: ClosedAs
    decided_by: tuple[str, ...] = ()
    note: str | None = None
    at: datetime


class ApproverNames(Frozen):
    names: tuple[str, ...]


class ResolvedApprovers(Frozen):
    approvers: tuple[str, ...]
    unresolved: tuple[str, ...] = ()
    """References that matched nobody (`role:x: no approver holds it`)."""


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


class Stage(StrEnum):
    VERIFYING = "verifying"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_EXECUTION = "awaiting_execution"
    EXECUTING = "executing"
    CLOSED = "closed"


class Progress(Frozen):
    """Where a governed action stands (the workflow's `progress` query)."""

    stage: Stage
    votes: tuple[RecordedVote, ...] = ()
    pending: PendingApproval | None = None
    outcome: Outcome | None = None


class Outcome(Frozen):
    request_id: str
    workflow_id: str
    status: ActionStatus
    decision: Decision
    approvals: tuple[RecordedVote, ...] = ()
    result: JsonValue = None
    error: str | None = None
    audit_seqs: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is ActionStatus.COMPLETED


Progress.model_rebuild()
Judgement.model_rebuild()
