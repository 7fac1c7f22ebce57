"""Likely mistakes in a policy set that compiles: rules that can never apply, approver roles
that nobody holds, escalations nobody can approve.

They are warnings: they don't stop a set loading (a worker keeps serving it and logs them);
`proctor policy check` prints them as file:line: warning: field: message and exits 1 on them
only with --strict.
"""

from __future__ import annotations

from proctor.models import Effect, EscalationSettings
from proctor.policy.compiled import CompiledFile, CompiledRule
from proctor.policy.loader import PolicyProblem
from proctor.policy.schema import PolicyFile


def shadowed_rules(files: tuple[CompiledFile, ...]) -> tuple[PolicyProblem, ...]:
    """Allow/escalate rules that an unconditional deny always beats: they can never apply (a
    shadow deny only beats shadow rules: the enforced ones never meet it)."""
    findings = []
    for compiled in files:
        for rule in compiled.rules:
            deny = None if rule.effect is Effect.DENY else _deny_covering(rule, compiled, files)
            if deny is not None:
                findings.append(
                    compiled.source.problem_at(
                        ("permissions", rule.effect.value, rule.order[1]),
                        f"unreachable: {rule.pattern!r} is always denied by {deny.rule_id} "
                        f"({deny.file})",
                    )
                )
    return tuple(findings)


def shadow_grants(files: tuple[CompiledFile, ...]) -> tuple[PolicyProblem, ...]:
    """`grant:` where it can never take effect: a shadow escalation asks nobody, so no approval
    of it makes a grant (enforcing the rule later is when it starts to mean something)."""
    findings = []
    for compiled in files:
        if compiled.shadow and compiled.policy.escalation.grant is not None:
            findings.append(_grant_unused(compiled, ("escalation", "grant")))
        for rule in compiled.rules:
            if rule.effect is not Effect.ESCALATE or not rule.shadow:
                continue
            spec = compiled.policy.permissions.escalate[rule.order[1]]
            if spec.grant is not None:
                path = ("permissions", "escalate", rule.order[1], "grant")
                findings.append(_grant_unused(compiled, path))
    return tuple(findings)


def _grant_unused(compiled: CompiledFile, path: tuple[str | int, ...]) -> PolicyProblem:
    return compiled.source.problem_at(
        path, "a shadow escalation asks nobody, so it makes no standing grant: grant has no effect"
    )


def unknown_roles(files: tuple[CompiledFile, ...], known: frozenset[str]) -> list[PolicyProblem]:
    """Escalate rules naming `role:<name>` approvers that no directory entry holds."""
    problems = []
    for compiled in files:
        for rule in compiled.rules:
            if rule.escalation is None or rule.shadow:
                continue
            for name in _approver_names(rule.escalation):
                if name.startswith("role:") and name.removeprefix("role:") not in known:
                    path = ("permissions", "escalate", rule.order[1])
                    problems.append(
                        PolicyProblem(
                            compiled.name,
                            compiled.source.line_of(path),
                            ".".join(map(str, path)) + ".approvers",
                            f"no approver in the directory holds {name!r} (see "
                            "PROCTOR_APPROVERS_FILE)",
                        )
                    )
    return problems


def nobody_approves(
    files: tuple[CompiledFile, ...], default_approvers: tuple[str, ...], source: str
) -> list[PolicyProblem]:
    """Escalate rules naming no approvers, and so asking the default approvers (`source`
    says where they come from), when those are too few for the rule's quorum (nobody, say):
    such requests can only time out."""
    problems = []
    for compiled in files:
        for rule in compiled.rules:
            escalation = rule.escalation
            if escalation is None or escalation.approvers or escalation.ladder or rule.shadow:
                continue  # a shadow escalation asks nobody
            if not default_approvers:
                found = "are nobody"
            elif len(default_approvers) < escalation.quorum:
                found = f"are {len(default_approvers)}, fewer than quorum {escalation.quorum}"
            else:
                continue
            problems.append(
                compiled.source.problem_at(
                    ("permissions", "escalate", rule.order[1]),
                    f"no approvers, and the default approvers ({source}) {found}: such "
                    "requests can only time out, and are then denied",
                )
            )
    return problems


def _approver_names(escalation: EscalationSettings) -> tuple[str, ...]:
    """Everyone an escalation may ask, ladder tiers included, each once."""
    names = [
        *escalation.approvers,
        *(name for tier in escalation.ladder for name in tier.approvers),
    ]
    return tuple(dict.fromkeys(names))


def _deny_covering(
    rule: CompiledRule, owner: CompiledFile, files: tuple[CompiledFile, ...]
) -> CompiledRule | None:
    """The first unconditional deny, in a file reaching every agent `owner` reaches, that
    matches every action `rule` can match."""
    for other in files:
        if other.policy.is_default or _same_targets(other.policy, owner.policy):
            for deny in other.rules:
                if (
                    deny.effect is Effect.DENY
                    and deny.is_unconditional
                    and (rule.shadow or not deny.shadow)
                    and _covers(deny, rule)
                ):
                    return deny
    return None


def _same_targets(a: PolicyFile, b: PolicyFile) -> bool:
    targets = {"agent", "agents", "role"}
    return a.model_dump(include=targets) == b.model_dump(include=targets)


def _covers(broad: CompiledRule, narrow: CompiledRule) -> bool:
    """Every action `narrow` can match is matched by `broad` (conservative: may say no)."""
    if narrow.is_exact:
        return broad.matches(narrow.pattern)
    if broad.pattern == "*":
        return True
    single_trailing = broad.pattern.count("*") == 1 and broad.pattern.endswith("*")
    return single_trailing and narrow.literal_prefix.startswith(broad.literal_prefix)
