"""Policy evaluation: compiled once, then a decision per request with no I/O.

Order is fixed and independent of rule order: deny > escalate > allow > default deny.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from proctor.models import AgentInfo, Decision, Effect, EscalationSettings, PolicyQuery
from proctor.policy.loader import LoadedFile, PolicyError, PolicyProblem, PolicySet
from proctor.policy.schema import EscalationFields, PolicyFile, RuleSpec

DEFAULT_TIMEOUT_SECONDS = 86400.0
_PRECEDENCE = (Effect.DENY, Effect.ESCALATE, Effect.ALLOW)


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters (including `:`); everything else is literal."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


@dataclass(frozen=True)
class CompiledRule:
    effect: Effect
    rule_id: str
    file: str
    pattern: str
    regex: re.Pattern[str]
    reason: str
    escalation: EscalationSettings | None

    def matches(self, action: str) -> bool:
        return self.regex.match(action) is not None


@dataclass(frozen=True)
class CompiledFile:
    policy: PolicyFile
    rules: dict[Effect, tuple[CompiledRule, ...]]


class PolicyEngine:
    """Decides `PolicyQuery`s against one immutable policy set."""

    def __init__(self, policy_set: PolicySet) -> None:
        self.version = policy_set.version
        problems: list[PolicyProblem] = []
        self._files = tuple(_compile_file(f, problems) for f in policy_set.files)
        if problems:
            raise PolicyError(problems)

    def decide(self, query: PolicyQuery) -> Decision:
        applicable = [f for f in self._files if f.policy.applies_to(query.agent.agent_id,
                                                                    query.agent.role)]
        for effect in _PRECEDENCE:
            for compiled in applicable:
                for rule in compiled.rules[effect]:
                    if rule.matches(query.action):
                        return self._decision(rule)
        return Decision(
            effect=Effect.DENY,
            rule_id="default-deny",
            policy_version=self.version,
            reason=f"no rule allows {query.action!r} for {_who(query.agent)}",
        )

    def _decision(self, rule: CompiledRule) -> Decision:
        return Decision(
            effect=rule.effect,
            rule_id=rule.rule_id,
            policy_file=rule.file,
            policy_version=self.version,
            reason=rule.reason,
            escalation=rule.escalation,
        )


def _who(agent: AgentInfo) -> str:
    return f"agent {agent.agent_id!r} (role {agent.role!r})"


def _compile_file(loaded: LoadedFile, problems: list[PolicyProblem]) -> CompiledFile:
    stem = loaded.name.rsplit(".", 1)[0]
    rules: dict[Effect, tuple[CompiledRule, ...]] = {}
    for effect in _PRECEDENCE:
        specs: tuple[RuleSpec, ...] = getattr(loaded.policy.permissions, effect.value)
        compiled = []
        for index, spec in enumerate(specs):
            path = ("permissions", effect.value, index)
            escalation = None
            if effect is Effect.ESCALATE:
                escalation = _escalation(spec, loaded.policy.escalation)
                if not escalation.approvers:
                    problems.append(PolicyProblem(
                        loaded.name, loaded.line_of(path), ".".join(map(str, path)),
                        "escalate rule has no approvers (set approvers on the rule or in "
                        "the file's escalation: section)"))
            elif _has_escalation_fields(spec):
                problems.append(PolicyProblem(
                    loaded.name, loaded.line_of(path), ".".join(map(str, path)),
                    "approvers, quorum, timeout and on_timeout belong to escalate rules only"))
            compiled.append(CompiledRule(
                effect=effect,
                rule_id=spec.id or f"{stem}:{effect.value}:{spec.action}",
                file=loaded.name,
                pattern=spec.action,
                regex=glob_regex(spec.action),
                reason=spec.reason or f"{effect.value} {spec.action} ({loaded.name})",
                escalation=escalation,
            ))
        rules[effect] = tuple(compiled)
    return CompiledFile(loaded.policy, rules)


def _has_escalation_fields(spec: RuleSpec) -> bool:
    return any(getattr(spec, name) is not None for name in EscalationFields.model_fields)


def _escalation(spec: RuleSpec, defaults: EscalationFields) -> EscalationSettings:
    def pick(name: str) -> object:
        own = getattr(spec, name)
        return own if own is not None else getattr(defaults, name)

    approvers = pick("approvers") or ()
    quorum = pick("quorum") or 1
    timeout = pick("timeout") or DEFAULT_TIMEOUT_SECONDS
    on_timeout = pick("on_timeout") or "deny"
    return EscalationSettings.model_validate({
        "approvers": approvers, "quorum": quorum,
        "timeout_seconds": timeout, "on_timeout": on_timeout,
    })
