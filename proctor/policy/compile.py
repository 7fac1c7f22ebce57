"""Compiling a loaded policy set: each rule with its conditions and escalation resolved, once.

Every problem in the set is collected and raised together as one PolicyError (file:line:
field: message), so one `policy check` shows them all; what loads but cannot take effect (a
rate limit without a time unit) becomes a note instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from proctor.audit.rules import AuditSource, merge
from proctor.models import Effect, EscalationSettings, RateLimit
from proctor.policy.compiled import (
    PRECEDENCE,
    CompiledFile,
    CompiledRule,
    CompiledSet,
    rule_rank,
)
from proctor.policy.conditions import (
    Condition,
    ConditionKind,
    ConditionSyntaxError,
    compile_condition,
)
from proctor.policy.escalation import UnknownGroup, merged_defaults, resolve_escalation
from proctor.policy.loader import LoadedFile, Path_, PolicyError, PolicyProblem, PolicySet
from proctor.policy.schema import EscalationFields, PolicyFile, RuleSpec

_RATE_NAME = re.compile(r"^(?P<what>[a-z][a-z0-9_]*?)_per_(?P<unit>[a-z_]+?)s?$")
_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0}
_CONDITION_KINDS: tuple[ConditionKind, ...] = ("when", "condition", "unless")


def compile_policy_set(policy_set: PolicySet) -> CompiledSet:
    """The set ready to decide, or a PolicyError naming every problem in it."""
    problems: list[PolicyProblem] = []
    _conflicting_defaults(policy_set, problems)
    compiler = _Compiler(
        merged_defaults(
            f.policy for f in policy_set.files if f.policy.is_default and f.policy.mode == "enforce"
        ),
        _merged_groups(policy_set, problems),
        problems,
    )
    files = tuple(
        compiler.file(position, loaded) for position, loaded in enumerate(policy_set.files)
    )
    if problems:
        raise PolicyError(problems)
    return CompiledSet(
        policy_set.version,
        files,
        tuple(compiler.notes),
        merge(_audit_source(f.policy) for f in policy_set.files),
    )


@dataclass(frozen=True)
class _Place:
    """Where in a file a rule stands: the problems found in it are reported at its line."""

    loaded: LoadedFile
    path: Path_
    problems: list[PolicyProblem]

    def problem(self, message: str, *below: str) -> None:
        self.problems.append(self.loaded.problem_at((*self.path, *below), message))


@dataclass
class _Compiler:
    """What compiling one file needs from the whole set, and where its problems and notes go."""

    defaults: EscalationFields
    """The escalation settings of the files that apply to everyone, merged."""
    groups: dict[str, tuple[str, ...]]
    problems: list[PolicyProblem]
    notes: list[PolicyProblem] = field(default_factory=list)

    def file(self, position: int, loaded: LoadedFile) -> CompiledFile:
        rules = tuple(
            self._rule(loaded, (position, index), effect, spec)
            for effect in PRECEDENCE
            for index, spec in enumerate(_specs(loaded.policy, effect))
        )
        return CompiledFile(
            loaded,
            rules,
            _rate_limits(loaded, self.notes),
            self._trust_escalation(loaded.policy),
        )

    def _rule(
        self, loaded: LoadedFile, order: tuple[int, int], effect: Effect, spec: RuleSpec
    ) -> CompiledRule:
        place = _Place(loaded, ("permissions", effect.value, order[1]), self.problems)
        escalation = None
        if effect is Effect.ESCALATE:
            escalation = self._escalation(spec, loaded.policy, place)
        elif given := _escalation_fields_given(spec):
            place.problem(f"escalation settings ({', '.join(given)}) belong to escalate rules")
        conditions = _conditions(spec, place)
        stem = loaded.name.rsplit(".", 1)[0]
        content = json.dumps(
            [
                effect.value,
                spec.model_dump(mode="json", exclude={"mode"}),
                escalation.model_dump(mode="json") if escalation else None,
            ],
            sort_keys=True,
        )
        return CompiledRule(
            effect=effect,
            rule_id=spec.id or f"{stem}:{effect.value}:{spec.action}",
            file=loaded.name,
            order=order,
            pattern=spec.action,
            reason=spec.reason or f"{effect.value} {spec.action} ({loaded.name})",
            escalation=escalation,
            when=conditions.get("when") or conditions.get("condition"),
            unless=conditions.get("unless"),
            rank=rule_rank(
                spec.action,
                bool(conditions),
                spec.reason is not None,
                content,
                loaded.sha256,
                order[1],
            ),
            approvers_named=bool(spec.approvers or loaded.policy.escalation.approvers),
            shadow=(spec.mode or loaded.policy.mode) == "shadow",
        )

    def _escalation(
        self, spec: RuleSpec, policy: PolicyFile, place: _Place
    ) -> EscalationSettings | None:
        """An escalate rule's settings over its file's and the defaults; a problem where they
        cannot work."""
        try:
            escalation = resolve_escalation(
                spec, policy.escalation, self.defaults, groups=self.groups, default_approvers=True
            )
        except UnknownGroup as exc:
            place.problem(f"unknown approver group {exc.args[0]!r} (define it under groups:)")
            return None
        if escalation is None:
            place.problem(
                "escalate rule has no approvers (set approvers on the rule, in "
                "the file's escalation: section, or in a defaults file)"
            )
        elif escalation.on_timeout == "escalate" and not escalation.ladder:
            place.problem("on_timeout: escalate needs a ladder to escalate to")
        return escalation

    def _trust_escalation(self, policy: PolicyFile) -> EscalationSettings | None:
        """Who decides what the file's trust minimum holds back: its escalation over the
        defaults, else (no approvers named anywhere) the organisation's default approvers, as
        for an escalate rule that names none."""
        if policy.trust.minimum_score is None:
            return None
        try:
            escalation = resolve_escalation(
                policy.escalation, self.defaults, groups=self.groups, default_approvers=True
            )
        except UnknownGroup:
            return None  # an escalate rule leaning on it reports the group
        # No rule allows grants here: a standing grant would outlast the low score it is for.
        if escalation is None:
            return None
        return escalation.model_copy(update={"grant_max_seconds": None})


def _specs(policy: PolicyFile, effect: Effect) -> tuple[RuleSpec, ...]:
    specs: tuple[RuleSpec, ...] = getattr(policy.permissions, effect.value)
    return specs


def _escalation_fields_given(spec: RuleSpec) -> list[str]:
    """The escalation settings a rule sets: on an allow or deny rule each one is a mistake."""
    return [name for name in EscalationFields.model_fields if getattr(spec, name) is not None]


def _conditions(spec: RuleSpec, place: _Place) -> dict[ConditionKind, Condition]:
    """The rule's CEL conditions, compiled; one that does not parse or type-check is a problem
    at its line."""
    compiled: dict[ConditionKind, Condition] = {}
    for kind in _CONDITION_KINDS:
        source = getattr(spec, kind)
        if source is None:
            continue
        try:
            compiled[kind] = compile_condition(kind, source)
        except ConditionSyntaxError as exc:
            place.problem(str(exc), kind)
    return compiled


def _merged_groups(
    policy_set: PolicySet, problems: list[PolicyProblem]
) -> dict[str, tuple[str, ...]]:
    """Every file's approver groups; a name two files define differently is a problem."""
    groups: dict[str, tuple[str, ...]] = {}
    for loaded in policy_set.files:
        for name, members in loaded.policy.groups.items():
            if name in groups and groups[name] != members:
                problems.append(
                    loaded.problem_at(("groups", name), "group defined differently in another file")
                )
            groups.setdefault(name, members)
    return groups


def _conflicting_defaults(policy_set: PolicySet, problems: list[PolicyProblem]) -> None:
    """An escalation default that two files applying to everyone set differently is a
    problem: which one applied would depend on the files' names."""
    seen: dict[str, tuple[object, str]] = {}
    for loaded in sorted(policy_set.files, key=lambda f: f.name):
        if not loaded.policy.is_default or loaded.policy.mode == "shadow":
            continue
        for name in EscalationFields.model_fields:
            value = getattr(loaded.policy.escalation, name)
            if value is None:
                continue
            first = seen.setdefault(name, (value, loaded.name))
            if first[0] != value:
                problems.append(
                    loaded.problem_at(
                        ("escalation", name),
                        f"set differently in {first[1]}, which also applies to every agent: "
                        "set it in one of them",
                    )
                )


def _rate_limits(loaded: LoadedFile, notes: list[PolicyProblem]) -> tuple[RateLimit, ...]:
    """`actions_per_minute` counts every admitted action, `escalations_per_hour` the escalated
    ones, any other `<things>_per_<unit>` the actions whose name contains the singular."""
    limits = []
    for name, limit in loaded.policy.rate_limits.items():
        match = _RATE_NAME.match(name)
        unit = match.group("unit") if match else ""
        if match is None or unit not in _UNIT_SECONDS:
            notes.append(
                loaded.problem_at(
                    ("rate_limits", name),
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
