"""A compiled policy set: its rules and files as decisions read them, built once per load.

`compile.py` builds these from the loaded YAML; `decide.py` and `lint.py` read them. Nothing
here parses, decides a request or judges a policy set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from proctor.audit.rules import AuditRules
from proctor.models import Effect, EscalationSettings, RateLimit
from proctor.policy.conditions import Condition, ConditionEvaluationError
from proctor.policy.loader import LoadedFile, PolicyProblem
from proctor.policy.schema import PolicyFile

PRECEDENCE = (Effect.DENY, Effect.ESCALATE, Effect.ALLOW)
"""Deny beats escalate beats allow, whatever order the rules are written in."""


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters (including `:`); everything else is literal."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def rule_rank(
    pattern: str, conditional: bool, explained: bool, content: str, file_sha256: str, index: int
) -> tuple[int, int, int, int, str, str, str, int]:
    """The most specific rule first: an exact name, then the most literal characters, then a
    conditional rule before an unconditional one, then one that gives its reason; ties broken
    by the pattern, the digest of the rule's content, the digest of its file's content, then
    its place in that file (only two byte-identical files get that far, and then nothing they
    decide differs but the name)."""
    exact = "*" not in pattern
    literal = len(pattern) - pattern.count("*")
    digest = hashlib.sha256(content.encode()).hexdigest()
    return (
        0 if exact else 1,
        -literal,
        0 if conditional else 1,
        0 if explained else 1,
        pattern,
        digest,
        file_sha256,
        index,
    )


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
    """(file position, rule position in its effect's list): where the rule stands, for its
    line; never which rule wins (see `rank`)."""
    pattern: str
    reason: str
    escalation: EscalationSettings | None
    when: Condition | None
    unless: Condition | None
    rank: tuple[int, int, int, int, str, str, str, int]
    """Which of several applying rules of one effect is reported (lowest first), from what the
    rules say and never from file names or order: see `rule_rank`."""
    approvers_named: bool = False
    """An escalate rule whose approvers its own rule or file names (not the defaults')."""
    shadow: bool = False
    """Decided alongside and recorded, never enforced (`mode: shadow` on the rule or file)."""

    @property
    def literal_prefix(self) -> str:
        return self.pattern.split("*", 1)[0]

    @property
    def is_exact(self) -> bool:
        return "*" not in self.pattern

    @property
    def is_unconditional(self) -> bool:
        return self.when is None and self.unless is None

    def matches(self, action: str) -> bool:
        if self.is_exact:
            return action == self.pattern
        return glob_regex(self.pattern).match(action) is not None

    def judge(self, context: dict[str, Any]) -> Verdict:
        """Do this rule's conditions hold for a request whose action matched it?

        A condition that fails on the request's data resolves towards the stricter outcome: a
        deny or escalate rule then applies, an allow rule does not.
        """
        for condition, needed in ((self.when, True), (self.unless, False)):
            if condition is None:
                continue
            try:
                holds = condition.evaluate(context)
            except ConditionEvaluationError as exc:
                strict = self.effect is not Effect.ALLOW
                outcome = "applies" if strict else "does not apply"
                return Verdict(strict, f"{condition.kind} failed ({exc}): {outcome}")
            if holds is not needed:
                return Verdict(
                    False, f"{condition.kind} is {str(holds).lower()}: {condition.source}"
                )
        return Verdict(True, "matches")


@dataclass(frozen=True)
class CompiledFile:
    source: LoadedFile
    rules: tuple[CompiledRule, ...]
    rate_limits: tuple[RateLimit, ...]
    trust_escalation: EscalationSettings | None
    """Who decides what this file's trust minimum holds back (None: the gate denies instead)."""

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def policy(self) -> PolicyFile:
        return self.source.policy

    @property
    def shadow(self) -> bool:
        """A `mode: shadow` file: its rate limits and trust section never apply."""
        return self.policy.mode == "shadow"


@dataclass(frozen=True)
class CompiledSet:
    version: str
    files: tuple[CompiledFile, ...]
    notes: tuple[PolicyProblem, ...]
    """What loads but cannot take effect (printed by `policy check`, logged on load)."""
    audit_rules: AuditRules
    """Redaction, erasure and retention for the audit log, merged over every file."""
