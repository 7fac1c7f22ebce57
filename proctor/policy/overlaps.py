"""Rules of one effect in different files that can apply to the same request: a warning for
`proctor policy check`, since they merge (README, Policy: "Several rules of one effect").

They load and decide as documented; the warning says what the merge gives, so an author who
meant one file to override another sees that it doesn't. Pure: no I/O, nothing decided here.
"""

from __future__ import annotations

from functools import lru_cache

from proctor.models import Effect, EscalationSettings
from proctor.policy.compiled import CompiledFile, CompiledRule, glob_regex
from proctor.policy.escalation import grant_summary
from proctor.policy.loader import PolicyProblem
from proctor.policy.merging import merged_escalation
from proctor.policy.schema import PolicyFile


def overlapping_rules(files: tuple[CompiledFile, ...]) -> tuple[PolicyProblem, ...]:
    """One finding per pair of same-effect enforced rules from two files that may both apply
    to one request, at the line of the rule that is not reported (the less specific), sorted
    by file and line. Shadow rules change nothing that happens: what they would merge to shows
    in `policy explain` and the shadow report, not as a warning."""
    findings = []
    for i, first in enumerate(files):
        for second in files[i + 1 :]:
            if not _may_share_an_agent(first.policy, second.policy):
                continue
            for a in first.rules:
                for b in second.rules:
                    if a.shadow or b.shadow or a.effect is not b.effect:
                        continue
                    if globs_intersect(a.pattern, b.pattern):
                        findings.append(_finding(a, first, b, second))
    return tuple(sorted(findings, key=lambda p: (p.file, p.line, p.message)))


def _finding(
    a: CompiledRule, a_file: CompiledFile, b: CompiledRule, b_file: CompiledFile
) -> PolicyProblem:
    (reported, reported_file), (other, other_file) = sorted(
        ((a, a_file), (b, b_file)), key=lambda pair: pair[0].rank
    )
    where = f"{reported.rule_id} ({reported_file.name}:{_line(reported, reported_file)})"
    message = f"overlaps {where}: where both apply, {reported.rule_id} is reported"
    if other.effect is Effect.ESCALATE:
        merged = merged_escalation((reported, other))
        message = f"overlaps {where}: where both apply, " + (
            "they name no approver in common and the request is denied"
            if merged is None
            else f"they merge to approvers {', '.join(merged.approvers) or '(defaults)'}, "
            f"quorum {merged.quorum}, timeout {merged.timeout_seconds:g}s, "
            f"on timeout {merged.on_timeout}{_grants(merged, reported, other)}"
        )
    path = ("permissions", other.effect.value, other.order[1])
    return other_file.source.problem_at(path, message)


def _grants(merged: EscalationSettings, *rules: CompiledRule) -> str:
    return grant_summary(merged, *(r.escalation for r in rules if r.escalation is not None))


def _line(rule: CompiledRule, compiled: CompiledFile) -> int:
    return compiled.source.line_of(("permissions", rule.effect.value, rule.order[1]))


def _may_share_an_agent(a: PolicyFile, b: PolicyFile) -> bool:
    """Could one agent be under both files? (An agent list and a role: it may hold it.)"""
    if a.is_default or b.is_default:
        return True
    ids_a, ids_b = _agent_ids(a), _agent_ids(b)
    if ids_a is not None and ids_b is not None:
        return bool(ids_a & ids_b)
    if a.role and b.role:
        return a.role == b.role
    return True


def _agent_ids(policy: PolicyFile) -> set[str] | None:
    if policy.agent:
        return {policy.agent}
    return set(policy.agents) if policy.agents else None


@lru_cache(maxsize=65536)
def globs_intersect(a: str, b: str) -> bool:
    """Is there an action both patterns match? (`*` matches any run of characters.)"""
    if "*" not in a:
        return _matches(b, a)
    if "*" not in b:
        return _matches(a, b)
    prefix_a, prefix_b = a.split("*", 1)[0], b.split("*", 1)[0]
    suffix_a, suffix_b = a.rsplit("*", 1)[1], b.rsplit("*", 1)[1]
    if not (prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)):
        return False
    if not (suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)):
        return False
    return _both_match_something(a, b)


def _matches(pattern: str, action: str) -> bool:
    return glob_regex(pattern).match(action) is not None


def _both_match_something(a: str, b: str) -> bool:
    """Walk both patterns at once: a star may end, or swallow the other's next literal."""
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        star_a = i < len(a) and a[i] == "*"
        star_b = j < len(b) and b[j] == "*"
        if star_a:
            todo.append((i + 1, j))
            if j < len(b) and not star_b:
                todo.append((i, j + 1))
        if star_b:
            todo.append((i, j + 1))
            if i < len(a) and not star_a:
                todo.append((i + 1, j))
        if not star_a and not star_b and i < len(a) and j < len(b) and a[i] == b[j]:
            todo.append((i + 1, j + 1))
    return False
