"""Policy evaluation: compiled once, then a decision per request with no I/O.

Order is fixed and independent of rule order: deny > escalate > allow > default deny. A request
only meets the rules its action can match (an exact-name dictionary plus a dictionary of the
literal prefixes of wildcard patterns), so a 1,000-rule set decides about as fast as a 10-rule
set. Conditions that fail on the request's data resolve towards the stricter outcome: a deny or
escalate rule then applies, an allow rule does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from proctor.audit.rules import AuditSource, merge
from proctor.models import (
    AgentInfo,
    Decision,
    Effect,
    EscalationSettings,
    LadderTier,
    PolicyQuery,
    RateLimit,
    TrustPolicy,
)
from proctor.policy.conditions import (
    Condition,
    ConditionEvaluationError,
    ConditionKind,
    ConditionSyntaxError,
    compile_condition,
)
from proctor.policy.loader import LoadedFile, PolicyError, PolicyProblem, PolicySet
from proctor.policy.schema import EscalationFields, PolicyFile, RuleSpec

DEFAULT_TIMEOUT_SECONDS = 86400.0
_RATE_NAME = re.compile(r"^(?P<what>[a-z][a-z0-9_]*?)_per_(?P<unit>[a-z_]+?)s?$")
_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0}
PRECEDENCE = (Effect.DENY, Effect.ESCALATE, Effect.ALLOW)
_VIEW_CACHE_LIMIT = 10_000


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters (including `:`); everything else is literal."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


@dataclass(frozen=True)
class Verdict:
    applies: bool
    why: str


@dataclass(frozen=True)
class CompiledRule:
    effect: Effect
    rule_id: str
    file: str
    order: tuple[int, int]
    """(file position, rule position): which rule is reported when several apply."""
    pattern: str
    reason: str
    escalation: EscalationSettings | None
    when: Condition | None
    unless: Condition | None

    @property
    def literal_prefix(self) -> str:
        return self.pattern.split("*", 1)[0]

    @property
    def is_exact(self) -> bool:
        return "*" not in self.pattern

    def matches(self, action: str) -> bool:
        if self.is_exact:
            return action == self.pattern
        return glob_regex(self.pattern).match(action) is not None

    def judge(self, context: dict[str, Any]) -> Verdict:
        """Do this rule's conditions hold for a request whose action matched it?"""
        strict = self.effect is not Effect.ALLOW  # errors resolve towards the stricter outcome
        if self.when is not None:
            try:
                if not self.when.evaluate(context):
                    return Verdict(False, f"{self.when.kind} is false: {self.when.source}")
            except ConditionEvaluationError as exc:
                return Verdict(
                    strict,
                    f"{self.when.kind} failed ({exc}): {'applies' if strict else 'does not apply'}",
                )
        if self.unless is not None:
            try:
                if self.unless.evaluate(context):
                    return Verdict(False, f"unless is true: {self.unless.source}")
            except ConditionEvaluationError as exc:
                return Verdict(
                    strict, f"unless failed ({exc}): {'applies' if strict else 'does not apply'}"
                )
        return Verdict(True, "matches")


@dataclass
class RuleIndex:
    """The rules of one effect that apply to one agent, findable by action in O(len(action))."""

    exact: dict[str, list[CompiledRule]] = field(default_factory=dict)
    by_prefix: dict[str, list[CompiledRule]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()

    @classmethod
    def build(cls, rules: Iterable[CompiledRule]) -> RuleIndex:
        index = cls()
        for rule in rules:
            target = index.exact if rule.is_exact else index.by_prefix
            key = rule.pattern if rule.is_exact else rule.literal_prefix
            target.setdefault(key, []).append(rule)
        index.prefix_lengths = tuple(sorted({len(p) for p in index.by_prefix}))
        return index

    def candidates(self, action: str) -> list[CompiledRule]:
        found = list(self.exact.get(action, ()))
        for length in self.prefix_lengths:
            if length > len(action):
                break
            for rule in self.by_prefix.get(action[:length], ()):
                if glob_regex(rule.pattern).match(action):
                    found.append(rule)
        if len(found) > 1:
            found.sort(key=lambda r: r.order)
        return found


@dataclass(frozen=True)
class TrustGate:
    minimum_score: float
    recovery_threshold: float
    below_minimum: Literal["escalate", "deny"]
    file: str
    escalation: EscalationSettings | None

    def holds_back(self, agent: AgentInfo) -> bool:
        """Below the minimum, or not yet back at the recovery threshold after falling."""
        return agent.trust_score < self.minimum_score or (
            agent.autonomy_blocked and agent.trust_score < self.recovery_threshold
        )


@dataclass(frozen=True)
class AgentView:
    """Everything of the policy set that applies to one (agent id, role)."""

    indexes: dict[Effect, RuleIndex]
    files: tuple[CompiledFile, ...]
    trust: TrustGate | None
    rate_limits: tuple[RateLimit, ...]
    trust_policy: TrustPolicy


@dataclass(frozen=True)
class CompiledFile:
    name: str
    policy: PolicyFile
    rules: tuple[CompiledRule, ...]
    rate_limits: tuple[RateLimit, ...] = ()


@dataclass(frozen=True)
class Consideration:
    rule: CompiledRule
    verdict: Verdict


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    considered: tuple[Consideration, ...]
    files_applying: tuple[str, ...]
    files_not_applying: tuple[str, ...]


class PolicyEngine:
    """Decides `PolicyQuery`s against one immutable policy set."""

    def __init__(self, policy_set: PolicySet) -> None:
        self.version = policy_set.version
        problems: list[PolicyProblem] = []
        defaults = _merged_defaults(f.policy for f in policy_set.files if f.policy.is_default)
        self._groups = _merged_groups(policy_set, problems)
        self.notes: list[PolicyProblem] = []
        """What loads but cannot take effect (printed by `policy check`, logged on load)."""
        self.files = tuple(
            _compile_file(position, loaded, defaults, self._groups, problems, self.notes)
            for position, loaded in enumerate(policy_set.files)
        )
        self._defaults = defaults
        if problems:
            raise PolicyError(problems)
        self.findings = _shadowed_rules(self.files, policy_set)
        """Likely mistakes that don't stop loading (`policy check` exits 1 on them)."""
        self._views: dict[tuple[str, str], AgentView] = {}
        self._loaded = {f.name: f for f in policy_set.files}
        self.audit_rules = merge(_audit_source(f.policy) for f in policy_set.files)
        """Redaction, erasure and retention for the audit log, merged over every file."""

    def unknown_roles(self, known: frozenset[str]) -> list[PolicyProblem]:
        """Escalate rules naming `role:<name>` approvers that no directory entry holds."""
        problems = []
        for compiled in self.files:
            for rule in compiled.rules:
                if rule.escalation is None:
                    continue
                names = [
                    *rule.escalation.approvers,
                    *(a for tier in rule.escalation.ladder for a in tier.approvers),
                ]
                for name in dict.fromkeys(names):
                    if name.startswith("role:") and name.removeprefix("role:") not in known:
                        path = ("permissions", "escalate", rule.order[1])
                        problems.append(
                            PolicyProblem(
                                compiled.name,
                                self._loaded[compiled.name].line_of(path),
                                ".".join(map(str, path)) + ".approvers",
                                f"no approver in the directory holds {name!r} (see "
                                "PROCTOR_APPROVERS_FILE)",
                            )
                        )
        return problems

    def decide(self, query: PolicyQuery, at: datetime | None = None) -> Decision:
        view = self._view(query.agent)
        context = _context(query, at)
        for effect in PRECEDENCE:
            for rule in view.indexes[effect].candidates(query.action):
                if rule.judge(context).applies:
                    return self._decision(rule, view, query.agent)
        return self._default_deny(query)

    def explain(self, query: PolicyQuery, at: datetime | None = None) -> Explanation:
        """The decision, plus every rule of the applicable files and why it did (not) match."""
        view = self._view(query.agent)
        context = _context(query, at)
        considered = []
        for effect in PRECEDENCE:
            for compiled in view.files:
                for rule in compiled.rules:
                    if rule.effect is not effect:
                        continue
                    verdict = (
                        rule.judge(context)
                        if rule.matches(query.action)
                        else Verdict(False, f"action does not match {rule.pattern!r}")
                    )
                    considered.append(Consideration(rule, verdict))
        applying = {f.name for f in view.files}
        return Explanation(
            decision=self.decide(query, at),
            considered=tuple(considered),
            files_applying=tuple(f.name for f in view.files),
            files_not_applying=tuple(f.name for f in self.files if f.name not in applying),
        )

    def _decision(self, rule: CompiledRule, view: AgentView, agent: AgentInfo) -> Decision:
        decision = Decision(
            effect=rule.effect,
            rule_id=rule.rule_id,
            policy_file=rule.file,
            policy_version=self.version,
            reason=rule.reason,
            escalation=rule.escalation,
            rate_limits=() if rule.effect is Effect.DENY else view.rate_limits,
            trust=view.trust_policy,
        )
        gate = view.trust
        if rule.effect is Effect.ALLOW and gate and gate.holds_back(agent):
            reason = (
                f"trust score {agent.trust_score:g} is below the minimum "
                f"{gate.minimum_score:g} set in {gate.file}"
                if agent.trust_score < gate.minimum_score
                else f"trust score {agent.trust_score:g} has not yet recovered to "
                f"{gate.recovery_threshold:g} (set in {gate.file})"
            )
            if gate.below_minimum == "escalate" and gate.escalation is not None:
                return decision.model_copy(
                    update={
                        "effect": Effect.ESCALATE,
                        "rule_id": "trust-minimum",
                        "policy_file": gate.file,
                        "reason": reason,
                        "escalation": gate.escalation,
                    }
                )
            return decision.model_copy(
                update={
                    "effect": Effect.DENY,
                    "rule_id": "trust-minimum",
                    "policy_file": gate.file,
                    "reason": reason,
                    "escalation": None,
                    "rate_limits": (),
                }
            )
        return decision

    def approvers_for(self, agent: AgentInfo) -> tuple[str, ...]:
        """Every approver named in the escalation settings of the files for this agent."""
        view = self._view(agent)
        names: list[str] = []
        for compiled in view.files:
            for rule in compiled.rules:
                if rule.escalation is not None:
                    names.extend(rule.escalation.approvers)
        if view.trust and view.trust.escalation:
            names.extend(view.trust.escalation.approvers)
        return tuple(dict.fromkeys(names))

    def trust_policy(self, agent: AgentInfo) -> TrustPolicy:
        """The trust weights and thresholds in force for this agent."""
        return self._view(agent).trust_policy

    def _default_deny(self, query: PolicyQuery) -> Decision:
        return Decision(
            effect=Effect.DENY,
            rule_id="default-deny",
            policy_version=self.version,
            trust=self._view(query.agent).trust_policy,
            reason=f"no rule allows {query.action!r} for agent {query.agent.agent_id!r} "
            f"(role {query.agent.role!r})",
        )

    def _view(self, agent: AgentInfo) -> AgentView:
        key = (agent.agent_id, agent.role)
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= _VIEW_CACHE_LIMIT:
                self._views.clear()
            files = tuple(f for f in self.files if f.policy.applies_to(*key))
            indexes = {
                effect: RuleIndex.build(r for f in files for r in f.rules if r.effect is effect)
                for effect in PRECEDENCE
            }
            limits = tuple(limit for f in files for limit in f.rate_limits)
            gate = self._trust_gate(files)
            view = self._views[key] = AgentView(
                indexes, files, gate, limits, _trust_policy(files, gate)
            )
        return view

    def _trust_gate(self, files: tuple[CompiledFile, ...]) -> TrustGate | None:
        """The strictest minimum score among the files that apply."""
        gates = [
            (f.policy.trust.minimum_score, f)
            for f in files
            if f.policy.trust.minimum_score is not None
        ]
        if not gates:
            return None
        minimum, strictest = max(gates, key=lambda g: g[0] or 0.0)
        assert minimum is not None
        recovery = max(
            [minimum]
            + [
                f.policy.trust.recovery_threshold
                for f in files
                if f.policy.trust.recovery_threshold is not None
            ]
        )
        try:
            settings = _escalation_or_none(
                strictest.policy.escalation, self._defaults, groups=self._groups
            )
        except UnknownGroup:
            settings = None  # reported when the file's rules compiled
        return TrustGate(
            minimum, recovery, strictest.policy.trust.below_minimum, strictest.name, settings
        )


def _trust_policy(files: tuple[CompiledFile, ...], gate: TrustGate | None) -> TrustPolicy:
    """Weights from the most specific file that sets each (targeted files before defaults)."""
    ordered = sorted(files, key=lambda f: f.policy.is_default)
    weights: dict[str, float] = {}
    for compiled in ordered:
        for name, value in compiled.policy.trust.weights.model_dump().items():
            if value is not None:
                weights.setdefault(name, value)
    thresholds: dict[str, float] = (
        {"minimum_score": gate.minimum_score, "recovery_threshold": gate.recovery_threshold}
        if gate
        else {}
    )
    return TrustPolicy(**weights, **thresholds)


def _context(query: PolicyQuery, at: datetime | None) -> dict[str, Any]:
    agent = query.agent
    return {
        "params": query.params,
        "agent": {
            "id": agent.agent_id,
            "role": agent.role,
            "owner": agent.owner,
            "trust": float(agent.trust_score),
            "status": agent.status.value,
        },
        # Inside a map CEL takes plain values: the time as RFC 3339 (use timestamp(...)).
        "request": {
            "id": query.request_id or "",
            "action": query.action,
            "requested_at": (query.requested_at or at or datetime.now(UTC)).isoformat(),
        },
        "time": at or datetime.now(UTC),
    }


def _merged_defaults(policies: Iterable[PolicyFile]) -> EscalationFields:
    """Escalation defaults of the files that apply to everyone: first value of each field."""
    merged: dict[str, Any] = {}
    for policy in policies:
        for name in EscalationFields.model_fields:
            value = getattr(policy.escalation, name)
            if value is not None and name not in merged:
                merged[name] = value
    return EscalationFields(**merged)


class UnknownGroup(LookupError):
    pass


def _expand(names: Iterable[str], groups: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Approver names with every `group:<name>` replaced by its members (first mention wins)."""
    expanded: list[str] = []
    for name in names:
        if name.startswith("group:"):
            members = groups.get(name.removeprefix("group:"))
            if members is None:
                raise UnknownGroup(name)
            expanded.extend(members)
        else:
            expanded.append(name)
    return tuple(dict.fromkeys(expanded))


def _escalation_or_none(
    *layers: EscalationFields, groups: Mapping[str, tuple[str, ...]]
) -> EscalationSettings | None:
    """The first value of each field across rule → file → defaults; None without approvers."""

    def pick(name: str) -> Any:
        for layer in layers:
            value = getattr(layer, name)
            if value is not None:
                return value
        return None

    approvers = pick("approvers")
    if not approvers:
        return None
    ladder = pick("ladder") or ()
    return EscalationSettings(
        approvers=_expand(approvers, groups),
        quorum=pick("quorum") or 1,
        timeout_seconds=pick("timeout") or DEFAULT_TIMEOUT_SECONDS,
        on_timeout=pick("on_timeout") or "deny",
        reminders_seconds=pick("reminders") or (),
        ladder=tuple(
            LadderTier(after_seconds=step.after, approvers=_expand(step.approvers, groups))
            for step in ladder
        ),
        severity=pick("severity"),
        channel=pick("channel"),
        direct_messages=_flag(pick("direct_messages"), True),
        deny_vetoes=_flag(pick("deny_vetoes"), True),
        owner_may_approve=_flag(pick("owner_may_approve"), False),
    )


def _flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _merged_groups(
    policy_set: PolicySet, problems: list[PolicyProblem]
) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for loaded in policy_set.files:
        for name, members in loaded.policy.groups.items():
            if name in groups and groups[name] != members:
                problems.append(
                    PolicyProblem(
                        loaded.name,
                        loaded.line_of(("groups", name)),
                        f"groups.{name}",
                        "group defined differently in another file",
                    )
                )
            groups.setdefault(name, members)
    return groups


def _compile_rate_limits(loaded: LoadedFile, notes: list[PolicyProblem]) -> tuple[RateLimit, ...]:
    """`actions_per_minute` counts every admitted action, `escalations_per_hour` the escalated
    ones, any other `<things>_per_<unit>` the actions whose name contains the singular."""
    limits = []
    for name, limit in loaded.policy.rate_limits.items():
        match = _RATE_NAME.match(name)
        unit = match.group("unit") if match else ""
        if match is None or unit not in _UNIT_SECONDS:
            notes.append(
                PolicyProblem(
                    loaded.name,
                    loaded.line_of(("rate_limits", name)),
                    f"rate_limits.{name}",
                    f"not enforced: {unit or name!r} is not a time unit "
                    f"({', '.join(_UNIT_SECONDS)})",
                )
            )
            continue
        what = match.group("what")
        counts: Literal["actions", "escalations", "matching"] = (
            what  # type: ignore[assignment]
            if what in ("actions", "escalations")
            else "matching"
        )
        limits.append(
            RateLimit(
                name=name,
                limit=limit,
                window_seconds=_UNIT_SECONDS[unit],
                counts=counts,
                match=what.removesuffix("s") if counts == "matching" else None,
                policy_file=loaded.name,
            )
        )
    return tuple(limits)


def _audit_source(policy: PolicyFile) -> AuditSource:
    section = policy.audit
    agents = (policy.agent,) if policy.agent else policy.agents
    return AuditSource(
        agents=tuple(agents) if agents else None,
        level=section.level,
        level_set="level" in section.model_fields_set,
        retention=section.retention,
        sensitive_fields=section.sensitive_fields,
        personal_fields=section.personal_fields,
        data_subject=section.data_subject,
        detectors=tuple(section.detectors),
    )


def _covers(broad: CompiledRule, narrow: CompiledRule) -> bool:
    """Every action `narrow` can match is matched by `broad` (conservative: may say no)."""
    if narrow.is_exact:
        return broad.matches(narrow.pattern)
    if broad.pattern == "*":
        return True
    single_trailing = broad.pattern.count("*") == 1 and broad.pattern.endswith("*")
    return single_trailing and narrow.literal_prefix.startswith(broad.literal_prefix)


def _shadowed_rules(files: tuple[CompiledFile, ...], policy_set: PolicySet) -> list[PolicyProblem]:
    """Allow/escalate rules that an unconditional deny always beats: they can never apply."""
    lines = {f.name: f for f in policy_set.files}
    findings = []
    for compiled in files:
        for rule in compiled.rules:
            if rule.effect is Effect.DENY:
                continue
            for other in files:
                if not (
                    other.policy.is_default
                    or other.policy.model_dump(include={"agent", "agents", "role"})
                    == compiled.policy.model_dump(include={"agent", "agents", "role"})
                ):
                    continue
                deny = next(
                    (
                        d
                        for d in other.rules
                        if d.effect is Effect.DENY
                        and d.when is None
                        and d.unless is None
                        and _covers(d, rule)
                    ),
                    None,
                )
                if deny is not None:
                    path = ("permissions", rule.effect.value, rule.order[1])
                    findings.append(
                        PolicyProblem(
                            compiled.name,
                            lines[compiled.name].line_of(path),
                            ".".join(map(str, path)),
                            f"unreachable: {rule.pattern!r} is always denied by {deny.rule_id} "
                            f"({deny.file})",
                        )
                    )
                    break
    return findings


def _compile_file(
    position: int,
    loaded: LoadedFile,
    defaults: EscalationFields,
    groups: Mapping[str, tuple[str, ...]],
    problems: list[PolicyProblem],
    notes: list[PolicyProblem],
) -> CompiledFile:
    stem = loaded.name.rsplit(".", 1)[0]
    rules: list[CompiledRule] = []
    for effect in PRECEDENCE:
        specs: tuple[RuleSpec, ...] = getattr(loaded.policy.permissions, effect.value)
        for index, spec in enumerate(specs):
            path = ("permissions", effect.value, index)

            def problem(message: str, *where: str | int, path: tuple[Any, ...] = path) -> None:
                full = (*path, *where)
                problems.append(
                    PolicyProblem(
                        loaded.name, loaded.line_of(full), ".".join(map(str, full)), message
                    )
                )

            escalation = None
            if effect is Effect.ESCALATE:
                try:
                    escalation = _escalation_or_none(
                        spec, loaded.policy.escalation, defaults, groups=groups
                    )
                except UnknownGroup as exc:
                    problem(f"unknown approver group {exc.args[0]!r} (define it under groups:)")
                else:
                    if escalation is None:
                        problem(
                            "escalate rule has no approvers (set approvers on the rule, in "
                            "the file's escalation: section, or in a defaults file)"
                        )
                    elif escalation.on_timeout == "escalate" and not escalation.ladder:
                        problem("on_timeout: escalate needs a ladder to escalate to")
            elif _has_escalation_fields(spec):
                problem(
                    "escalation settings (approvers, quorum, timeout, on_timeout, "
                    "reminders, ladder, severity, channel, …) belong to escalate rules"
                )
            conditions: dict[str, Condition | None] = {}
            kinds: tuple[ConditionKind, ...] = ("when", "condition", "unless")
            for kind in kinds:
                source = getattr(spec, kind)
                if source is None:
                    continue
                try:
                    conditions[kind] = compile_condition(kind, source)
                except ConditionSyntaxError as exc:
                    problem(str(exc), kind)
            rules.append(
                CompiledRule(
                    effect=effect,
                    rule_id=spec.id or f"{stem}:{effect.value}:{spec.action}",
                    file=loaded.name,
                    order=(position, index),
                    pattern=spec.action,
                    reason=spec.reason or f"{effect.value} {spec.action} ({loaded.name})",
                    escalation=escalation,
                    when=conditions.get("when") or conditions.get("condition"),
                    unless=conditions.get("unless"),
                )
            )
    return CompiledFile(
        loaded.name, loaded.policy, tuple(rules), _compile_rate_limits(loaded, notes)
    )


def _has_escalation_fields(spec: RuleSpec) -> bool:
    return any(getattr(spec, name) is not None for name in EscalationFields.model_fields)
