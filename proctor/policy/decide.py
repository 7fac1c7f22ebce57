"""Deciding requests against one policy set: compiled once, then a decision per request, no I/O.

Order is fixed and independent of rule order: deny > escalate > allow > default deny. Every
rule of the winning effect that applies contributes: the most specific is reported, the others
are listed, and escalations merge to the strictest (merging.py); file names and the order of
files and rules change none of it. An allow that the agent's trust score holds back becomes
the trust gate's escalate (or deny).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from proctor.models import AgentInfo, Decision, Effect, PolicyQuery, TrustPolicy
from proctor.policy.agent_view import AgentView, view_for
from proctor.policy.compile import compile_policy_set
from proctor.policy.compiled import PRECEDENCE, CompiledRule, Verdict
from proctor.policy.lint import shadow_grants, shadowed_rules
from proctor.policy.loader import PolicyProblem, PolicySet
from proctor.policy.merging import merged_escalation
from proctor.policy.overlaps import overlapping_rules
from proctor.policy.shadow import ShadowDecision

_VIEW_CACHE_LIMIT = 10_000
_DECISION_CACHE_LIMIT = 256
"""Per agent view: the combinations of rules an agent's requests meet are few."""


@dataclass(frozen=True)
class Consideration:
    rule: CompiledRule
    verdict: Verdict


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    considered: tuple[Consideration, ...]
    contributing: tuple[CompiledRule, ...]
    """The rules that made the decision (the reported one first); none for a default deny."""
    files_applying: tuple[str, ...]
    files_not_applying: tuple[str, ...]


class PolicyEngine:
    """Decides `PolicyQuery`s against one immutable policy set (a PolicyError if it does not
    compile)."""

    def __init__(self, policy_set: PolicySet) -> None:
        compiled = compile_policy_set(policy_set)
        self.version = compiled.version
        self.files = compiled.files
        self.notes = compiled.notes
        """What loads but cannot take effect (printed by `policy check`, logged on load)."""
        self.audit_rules = compiled.audit_rules
        """Redaction, erasure and retention for the audit log, merged over every file."""
        self.findings = shadowed_rules(self.files) + shadow_grants(self.files)
        """Likely mistakes that don't stop loading (`policy check` exits 1 on them)."""
        self._views: dict[tuple[str, str], AgentView] = {}

    @cached_property
    def overlaps(self) -> tuple[PolicyProblem, ...]:
        """Rules of one effect in two files that may both apply, and merge (`policy check`
        warns); found when asked, not on every load."""
        return overlapping_rules(self.files)

    def decide(self, query: PolicyQuery, at: datetime | None = None) -> Decision:
        view = self._view(query.agent)
        context = condition_context(query, at)
        rules = _contributing(view, query.action, context)
        if not rules:
            return self._default_deny(query)
        return self._decision(rules, view, query.agent)

    def always_denies(self, agent: AgentInfo, action: str) -> bool:
        """Is every request for `action` by this agent denied, whatever its parameters and
        time: an unconditional deny rule applies, or no rule could allow or escalate it? (What
        a gateway may hide from the agent; the decision itself stays the worker's.)"""
        view = self._view(agent)
        denies = view.indexes[Effect.DENY].candidates(action)
        if any(rule.is_unconditional for rule in denies):
            return True
        return not any(
            view.indexes[effect].candidates(action) for effect in (Effect.ESCALATE, Effect.ALLOW)
        )

    def shadow_decide(
        self, query: PolicyQuery, enforced: Decision, at: datetime | None = None
    ) -> ShadowDecision | None:
        """What the request would get if the shadow rules were enforced, next to `enforced`
        (what `decide` gave it). None, at the cost of one lookup, for an agent no shadow rule
        applies to, and when no shadow rule applies to this request (nothing would differ)."""
        shadow_view = self._view(query.agent).shadow
        if shadow_view is None:
            return None
        context = condition_context(query, at)
        applying = tuple(
            rule.rule_id
            for effect in PRECEDENCE
            for rule in shadow_view.indexes[effect].candidates(query.action)
            if rule.shadow and rule.judge(context).applies
        )
        if not applying:
            return None
        rules = _contributing(shadow_view, query.action, context)
        shadow = (
            self._decision(rules, shadow_view, query.agent) if rules else self._default_deny(query)
        )
        return ShadowDecision.of(enforced, shadow, applying)

    def explain(self, query: PolicyQuery, at: datetime | None = None) -> Explanation:
        """The decision, plus every rule of the applicable files and why it did (not) match."""
        view = self._view(query.agent)
        context = condition_context(query, at)
        considered = tuple(
            Consideration(rule, _verdict(rule, query.action, context))
            for effect in PRECEDENCE
            for rule in sorted(
                (r for compiled in view.files for r in compiled.rules if r.effect is effect),
                key=lambda r: r.rank,
            )
        )
        applying = {f.name for f in view.files}
        return Explanation(
            decision=self.decide(query, at),
            considered=considered,
            contributing=_contributing(view, query.action, context),
            files_applying=tuple(f.name for f in view.files),
            files_not_applying=tuple(f.name for f in self.files if f.name not in applying),
        )

    def decision_for(
        self, rules: CompiledRule | Sequence[CompiledRule], agent: AgentInfo
    ) -> Decision:
        """The decision `rules` (of one effect) give when they apply to `agent`'s request, its
        trust gate included: what `decide` returns once it has found them."""
        found = (rules,) if isinstance(rules, CompiledRule) else tuple(rules)
        return self._decision(sorted(found, key=lambda r: r.rank), self._view(agent), agent)

    def approvers_for(self, agent: AgentInfo) -> tuple[str, ...]:
        """Every approver named in the escalation settings of the files for this agent."""
        view = self._view(agent)
        names: list[str] = []
        for compiled in view.files:
            for rule in compiled.rules:
                if rule.escalation is not None and not rule.shadow:
                    names.extend(rule.escalation.approvers)
        if view.trust and view.trust.escalation:
            names.extend(view.trust.escalation.approvers)
        return tuple(dict.fromkeys(names))

    def leaves_approvers_to_defaults(self, agent: AgentInfo) -> bool:
        """Whether an enforced escalation for this agent (its trust gate's included) names
        nobody: the organisation's default approvers decide those, and so may reinstate it."""
        view = self._view(agent)
        for compiled in view.files:
            for rule in compiled.rules:
                if (
                    rule.escalation is not None
                    and not rule.shadow
                    and not rule.escalation.approvers
                ):
                    return True
        gate = view.trust
        return gate is not None and gate.escalation is not None and not gate.escalation.approvers

    def trust_policy(self, agent: AgentInfo) -> TrustPolicy:
        """The trust weights and thresholds in force for this agent."""
        return self._view(agent).trust_policy

    def _decision(
        self, rules: Sequence[CompiledRule], view: AgentView, agent: AgentInfo
    ) -> Decision:
        """`rules`: the applying rules of the winning effect, most specific first. What they
        decide for this view is built once (a Decision is immutable); the trust gate is
        checked on every request."""
        key = tuple(map(id, rules))
        decision = view.decisions.get(key)
        if decision is None:
            if len(view.decisions) >= _DECISION_CACHE_LIMIT:
                view.decisions.clear()
            decision = view.decisions[key] = self._rules_decision(rules, view)
        gate = view.trust
        if decision.effect is not Effect.ALLOW or gate is None or not gate.holds_back(agent):
            return decision
        reason = (
            f"trust score {agent.trust_score:g} is below the minimum "
            f"{gate.minimum_score:g} set in {gate.file}"
            if agent.trust_score < gate.minimum_score
            else f"trust score {agent.trust_score:g} has not yet recovered to "
            f"{gate.recovery_threshold:g} (set in {gate.file})"
        )
        held: dict[str, Any] = {
            "rule_id": "trust-minimum",
            "policy_file": gate.file,
            "reason": reason,
            "also_matched": (),
        }
        if gate.below_minimum == "escalate" and gate.escalation is not None:
            return decision.model_copy(
                update={**held, "effect": Effect.ESCALATE, "escalation": gate.escalation}
            )
        return decision.model_copy(
            update={**held, "effect": Effect.DENY, "escalation": None, "rate_limits": ()}
        )

    def _rules_decision(self, rules: Sequence[CompiledRule], view: AgentView) -> Decision:
        rule = rules[0]
        escalation = rule.escalation
        if len(rules) > 1 and rule.effect is Effect.ESCALATE:
            escalation = merged_escalation(rules)
            if escalation is None:
                return self._no_common_approver(rules, view)
        return Decision(
            effect=rule.effect,
            rule_id=rule.rule_id,
            policy_file=rule.file,
            policy_version=self.version,
            reason=rule.reason,
            escalation=escalation,
            rate_limits=() if rule.effect is Effect.DENY else view.rate_limits,
            trust=view.trust_policy,
            also_matched=tuple(other.rule_id for other in rules[1:]),
        )

    def _no_common_approver(self, rules: Sequence[CompiledRule], view: AgentView) -> Decision:
        """Escalate rules nobody can satisfy together: denied, as a request nobody may approve
        would only time out (and `on_timeout: approve` must never be the way out)."""
        named = "; ".join(
            f"{r.rule_id} ({r.file}): {', '.join(r.escalation.approvers) if r.escalation else '-'}"
            for r in rules
        )
        return Decision(
            effect=Effect.DENY,
            rule_id=rules[0].rule_id,
            policy_file=rules[0].file,
            policy_version=self.version,
            reason=f"escalate rules that all apply leave no approver for them all: {named}",
            trust=view.trust_policy,
            also_matched=tuple(r.rule_id for r in rules[1:]),
        )

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
            view = self._views[key] = view_for(self.files, *key)
        return view


def _contributing(
    view: AgentView, action: str, context: dict[str, Any]
) -> tuple[CompiledRule, ...]:
    """Every applying rule of the first effect (by precedence) that has one, most specific
    first."""
    for effect in PRECEDENCE:
        found = [r for r in view.indexes[effect].candidates(action) if r.judge(context).applies]
        if found:
            return tuple(found)
    return ()


def _verdict(rule: CompiledRule, action: str, context: dict[str, Any]) -> Verdict:
    if not rule.matches(action):
        return Verdict(False, f"action does not match {rule.pattern!r}")
    return rule.judge(context)


def condition_context(query: PolicyQuery, at: datetime | None) -> dict[str, Any]:
    """What a rule's CEL conditions see of a request (see proctor.policy.conditions)."""
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
            # Always there (depth 0 without a chain), so a condition never fails on its absence.
            "delegation": query.delegation.context(),
        },
        "time": at or datetime.now(UTC),
    }
