"""The policy file format, as pydantic models: the single place that says what a file may hold.

Unknown keys are errors, so a typo never silently widens what an agent may do.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from proctor.models import ACTION_GLOB_PATTERN, APPROVER_REFERENCE_PREFIXES, Frozen

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_GLOB = re.compile(ACTION_GLOB_PATTERN)
Mode = Literal["enforce", "shadow"]
"""`shadow`: decided alongside and recorded, never acted on (README, Policy: "Shadow mode")."""


def parse_duration(value: Any) -> float:
    """`30s`, `15m`, `24h`, `7d`, `2w` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 24h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 15m, 24h, 7d)")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds in the largest unit that says them whole (`8h`, `90s`): how policy writes them."""
    for unit, size in sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1]):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


GRANT_MAX_LIMIT_SECONDS = 30 * 86400.0
"""No standing grant outlives 30 days: past that it is a policy rule, and belongs in a file."""


class GrantSpec(Frozen):
    """`grant: {max: 8h}`: approvers may approve similar requests for up to `max` (none
    allowed unless a rule says so)."""

    max: float

    @field_validator("max", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds > GRANT_MAX_LIMIT_SECONDS:
            raise ValueError(
                f"a standing grant lasts at most 30d ({format_duration(seconds)} given)"
            )
        return seconds


class LadderStep(Frozen):
    """After `after` without a decision, these approvers are added (and may decide)."""

    after: float
    approvers: tuple[str, ...] = Field(min_length=1)

    @field_validator("approvers")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            check_approver_name(name)
        return value

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class EscalationFields(Frozen):
    """Who decides an escalated action, how long they have, and who is added meanwhile."""

    approvers: tuple[str, ...] | None = None
    quorum: int | None = Field(default=None, ge=1, le=50)
    timeout: float | None = None
    on_timeout: Literal["deny", "approve", "escalate"] | None = None
    """`escalate`: at the deadline, add the next ladder tier and wait another `timeout`."""
    reminders: tuple[float, ...] | None = None
    """Times after the escalation at which pending approvers are reminded."""
    ladder: tuple[LadderStep, ...] | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None
    channel: str | None = Field(default=None, pattern=r"^#?[A-Za-z0-9_.-]{1,80}$")
    """Slack channel (id or #name) that receives the approval request."""
    direct_messages: bool | None = None
    """DM each approver on Slack (default true)."""
    deny_vetoes: bool | None = None
    """One authorised deny rejects the request (default true); false: rejected only once the
    quorum can no longer be reached."""
    owner_may_approve: bool | None = None
    """Let the agent's owner approve its requests (default false: separation of duties)."""
    grant: GrantSpec | None = None
    """How long a standing grant an approval may make (default: none)."""

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator("reminders", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> tuple[float, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError("reminders is a list of durations, e.g. [1h, 4h]")
        return tuple(sorted(parse_duration(v) for v in value))

    @field_validator("ladder")
    @classmethod
    def _ordered_ladder(cls, value: tuple[LadderStep, ...] | None) -> tuple[LadderStep, ...] | None:
        if value is not None and [s.after for s in value] != sorted(s.after for s in value):
            raise ValueError("ladder steps must be in increasing `after` order")
        return value

    @field_validator("approvers")
    @classmethod
    def _non_empty_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError(
                "approvers: [] names nobody; leave it out to ask the default approvers"
            )
        for name in value or ():
            check_approver_name(name)
        return value


_APPROVER_PREFIXES = ("group:", *APPROVER_REFERENCE_PREFIXES)


def check_approver_name(name: str) -> None:
    """An identity (an email, say), or `group:`, `role:` or `slack-group:` and a name."""
    if not name.strip() or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"{name!r} is not an approver name (no spaces, not empty)")
    prefix, colon, rest = name.partition(":")
    if colon and "@" not in prefix and (f"{prefix}:" not in _APPROVER_PREFIXES or not rest):
        raise ValueError(
            f"{name!r}: approver references are group:<name>, role:<name> or slack-group:<handle>"
        )


class RuleSpec(EscalationFields):
    """One rule: an action glob, optional CEL conditions, an id, a reason and (for escalate)
    who decides."""

    action: str
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    reason: str | None = Field(default=None, max_length=1000)
    when: str | None = Field(default=None, max_length=4000)
    """CEL: the rule applies only if this is true."""
    unless: str | None = Field(default=None, max_length=4000)
    """CEL: the rule does not apply if this is true."""
    condition: str | None = Field(default=None, max_length=4000)
    """The toolkit's form of `when` (parameters are also top-level names)."""
    mode: Mode | None = None
    """None: the file's mode."""

    @model_validator(mode="after")
    def _one_condition_form(self) -> RuleSpec:
        if self.when is not None and self.condition is not None:
            raise ValueError("give `when` or `condition`, not both")
        return self

    @field_validator("action")
    @classmethod
    def _glob(cls, value: str) -> str:
        if not _GLOB.match(value):
            raise ValueError(
                f"{value!r} is not an action pattern: letters, digits, _ . : / - and the "
                "wildcard * only"
            )
        return value


def _coerce_rule(value: Any) -> Any:
    """The toolkit's short form: a bare string is a rule with only an action."""
    return {"action": value} if isinstance(value, str) else value


class Permissions(Frozen):
    allow: tuple[RuleSpec, ...] = ()
    deny: tuple[RuleSpec, ...] = ()
    escalate: tuple[RuleSpec, ...] = ()

    @field_validator("allow", "deny", "escalate", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, list | tuple):
            return [_coerce_rule(item) for item in value]
        return value


Detector = Literal["email", "card", "ssn", "phone", "secret"]
DETECTORS: tuple[Detector, ...] = ("email", "card", "ssn", "phone", "secret")


class AuditSection(Frozen):
    """The toolkit's audit settings, plus erasure (redaction and retention act on the log)."""

    level: Literal["minimal", "standard", "full"] = "full"
    """full: parameters and results recorded (redacted); standard: results reduced to their
    type and size; minimal: parameters and results reduced to their field names."""
    retention: int | None = Field(default=None, ge=1, le=36500)
    """Days to keep audit rows."""
    sensitive_fields: tuple[str, ...] = ()
    """Field names (any depth) whose values are replaced by a keyed HMAC marker."""
    detectors: tuple[Detector, ...] = DETECTORS
    """Which detectors scan free text for personal data and secrets."""
    data_subject: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
    """The parameter path naming the data subject (e.g. customer.email)."""
    personal_fields: tuple[str, ...] = ()
    """Field names stored encrypted under the data subject's key (erasable)."""


class TrustWeights(Frozen):
    """How much each kind of event moves the score (defaults: +1, -5, -10, -3, -1)."""

    success: float | None = Field(default=None, ge=0, le=100)
    failure: float | None = Field(default=None, ge=-100, le=0)
    refused_request: float | None = Field(default=None, ge=-100, le=0)
    rejected: float | None = Field(default=None, ge=-100, le=0)
    timed_out: float | None = Field(default=None, ge=-100, le=0)


class TrustSection(Frozen):
    minimum_score: float | None = Field(default=None, ge=0, le=100)
    """Below it, actions this file would allow are escalated (or denied)."""
    recovery_threshold: float | None = Field(default=None, ge=0, le=100)
    """Once below the minimum, the score needed before autonomous actions resume."""
    below_minimum: Literal["escalate", "deny"] = "escalate"
    weights: TrustWeights = Field(default_factory=TrustWeights)

    @model_validator(mode="after")
    def _ordered(self) -> TrustSection:
        if (
            self.minimum_score is not None
            and self.recovery_threshold is not None
            and self.recovery_threshold < self.minimum_score
        ):
            raise ValueError("recovery_threshold must be at least minimum_score")
        return self


RATE_KEY = re.compile(r"^[a-z][a-z0-9_]*_per_[a-z_]+$")


def _rate_limits(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError("rate_limits is a mapping like {actions_per_minute: 100}")
    for key, limit in value.items():
        if not isinstance(key, str) or not RATE_KEY.match(key):
            raise ValueError(f"{key!r} is not a limit name like actions_per_minute")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{key}: a limit is a positive whole number")
    return dict(value)


class PolicyFile(Frozen):
    """One YAML file. Without `agent`, `agents` or `role` it applies to every agent."""

    agent: str | None = None
    agents: tuple[str, ...] | None = None
    role: str | None = None
    mode: Mode = "enforce"
    """`shadow`: every rule of the file is a shadow rule, and its rate limits, trust section
    and escalation defaults do not apply."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    permissions: Permissions = Field(default_factory=Permissions)
    escalation: EscalationFields = Field(default_factory=EscalationFields)
    """Defaults for this file's escalate rules (in a file without target: for every file)."""
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Named approver groups, usable anywhere as `group:<name>`."""
    audit: AuditSection = Field(default_factory=AuditSection)
    rate_limits: dict[str, int] = Field(default_factory=dict)
    trust: TrustSection = Field(default_factory=TrustSection)

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _limits(cls, value: Any) -> dict[str, int]:
        return {} if value is None else _rate_limits(value)

    @property
    def is_default(self) -> bool:
        """Applies to every agent (no agent, agents or role)."""
        return not (self.agent or self.agents or self.role)

    @model_validator(mode="after")
    def _one_target(self) -> PolicyFile:
        given = [name for name in ("agent", "agents", "role") if getattr(self, name)]
        if len(given) > 1:
            raise ValueError(f"give only one of agent, agents, role (got {', '.join(given)})")
        return self

    def applies_to(self, agent_id: str, role: str) -> bool:
        if self.agent:
            return self.agent == agent_id
        if self.agents:
            return agent_id in self.agents
        if self.role:
            return self.role == role
        return True
