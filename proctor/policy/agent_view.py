"""What of a compiled policy set applies to one agent, indexed for deciding.

A request only meets the rules its action can match (an exact-name dictionary plus a dictionary
of the literal prefixes of wildcard patterns), so a 1,000-rule set decides about as fast as a
10-rule set. The view is built on an agent's first request and reused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from proctor.models import (
    AgentInfo,
    Decision,
    Effect,
    EscalationSettings,
    RateLimit,
    TrustPolicy,
)
from proctor.policy.compiled import PRECEDENCE, CompiledFile, CompiledRule, glob_regex


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
        """The rules whose pattern matches `action`, most specific first (`rank`)."""
        found = list(self.exact.get(action, ()))
        for length in self.prefix_lengths:
            if length > len(action):
                break
            for rule in self.by_prefix.get(action[:length], ()):
                if glob_regex(rule.pattern).match(action):
                    found.append(rule)
        if len(found) > 1:
            found.sort(key=lambda r: r.rank)
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
    decisions: dict[tuple[int, ...], Decision] = field(default_factory=dict)
    """What each combination of applying rules (by identity) decides here, built once."""
    shadow: AgentView | None = None
    """The enforced rules plus the shadow rules: what would be decided if the shadow rules
    were enforced. None when no shadow rule applies to this agent (nothing extra to decide)."""


def view_for(files: tuple[CompiledFile, ...], agent_id: str, role: str) -> AgentView:
    """The files that apply to this agent id and role, their enforced rules indexed by effect;
    shadow rules only in `shadow`. A shadow file's limits and trust section never apply."""
    applying = tuple(f for f in files if f.policy.applies_to(agent_id, role))
    enforcing = tuple(f for f in applying if not f.shadow)
    limits = tuple(limit for f in enforcing for limit in f.rate_limits)
    gate = _trust_gate(enforcing)
    trust = _trust_policy(enforcing, gate)
    shadow = None
    if any(r.shadow for f in applying for r in f.rules):
        shadow = AgentView(_indexes(applying, shadow=True), applying, gate, limits, trust)
    return AgentView(_indexes(applying, shadow=False), applying, gate, limits, trust, shadow=shadow)


def _indexes(files: tuple[CompiledFile, ...], *, shadow: bool) -> dict[Effect, RuleIndex]:
    """Each effect's rules of `files`: the enforced ones, plus the shadow ones if `shadow`."""
    return {
        effect: RuleIndex.build(
            r for f in files for r in f.rules if r.effect is effect and (shadow or not r.shadow)
        )
        for effect in PRECEDENCE
    }


def _trust_gate(files: tuple[CompiledFile, ...]) -> TrustGate | None:
    """The strictest minimum score among the files that apply."""
    gates = [
        (f.policy.trust.minimum_score, f) for f in files if f.policy.trust.minimum_score is not None
    ]
    if not gates:
        return None
    # The highest minimum; at a tie, `deny` below it before `escalate`, then by content.
    minimum, strictest = min(
        gates,
        key=lambda g: (
            -(g[0] or 0.0),
            g[1].policy.trust.below_minimum != "deny",
            g[1].source.sha256,
        ),
    )
    assert minimum is not None
    recovery = max(
        [minimum]
        + [
            f.policy.trust.recovery_threshold
            for f in files
            if f.policy.trust.recovery_threshold is not None
        ]
    )
    return TrustGate(
        minimum,
        recovery,
        strictest.policy.trust.below_minimum,
        strictest.name,
        strictest.trust_escalation,
    )


def _trust_policy(files: tuple[CompiledFile, ...], gate: TrustGate | None) -> TrustPolicy:
    """Each weight from the files targeting the agent that set it, else from the defaults
    files; where several set it, the strictest (the lowest: least reward, heaviest penalty),
    so neither file names nor file order matter."""
    weights: dict[str, float] = {}
    for default in (False, True):
        tier: dict[str, float] = {}
        for compiled in files:
            if compiled.policy.is_default is not default:
                continue
            for name, value in compiled.policy.trust.weights.model_dump().items():
                if value is not None:
                    tier[name] = min(value, tier.get(name, value))
        for name, value in tier.items():
            weights.setdefault(name, value)
    thresholds: dict[str, float] = (
        {"minimum_score": gate.minimum_score, "recovery_threshold": gate.recovery_threshold}
        if gate
        else {}
    )
    return TrustPolicy(**weights, **thresholds)
