"""A shadow decision: what the policy would decide if its shadow rules were enforced, next to
what it did decide. Recorded (audit row, metric), never acted on."""

from __future__ import annotations

from proctor.models import Decision, Effect, Frozen

SHADOW_EVENT = "shadow_decision"
"""The audit event type of a shadow decision (read back by `proctor policy shadow-report`)."""


class ShadowDecision(Frozen):
    """Both decisions of one request, as policy gave them (before rate admission)."""

    enforced_effect: Effect
    enforced_rule: str
    shadow_effect: Effect
    shadow_rule: str
    shadow_rules: tuple[str, ...]
    """The shadow rules that applied to the request, highest precedence first: the first is
    the one the shadow report counts it under."""

    @property
    def agree(self) -> bool:
        """Same effect: the shadow rules would change nothing that happens."""
        return self.enforced_effect is self.shadow_effect

    @property
    def rule(self) -> str:
        return self.shadow_rules[0]

    @classmethod
    def of(cls, enforced: Decision, shadow: Decision, rules: tuple[str, ...]) -> ShadowDecision:
        return cls(
            enforced_effect=enforced.effect,
            enforced_rule=enforced.rule_id,
            shadow_effect=shadow.effect,
            shadow_rule=shadow.rule_id,
            shadow_rules=rules,
        )

    def payload(self) -> dict[str, object]:
        """The audit row's payload: both effects and rules, and whether they agree."""
        return {
            "enforced": {"effect": self.enforced_effect.value, "rule_id": self.enforced_rule},
            "shadow": {"effect": self.shadow_effect.value, "rule_id": self.shadow_rule},
            "shadow_rules": list(self.shadow_rules),
            "rule": self.rule,
            "agree": self.agree,
        }
