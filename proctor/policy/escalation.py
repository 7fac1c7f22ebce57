"""Escalation settings layered rule → file → defaults, with approver groups expanded.

Each field takes the first value set along the layers, so a rule says only what differs from
its file, and a file only what differs from the defaults files (those that apply to everyone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from proctor.errors import NotFoundError
from proctor.models import Decision, Effect, EscalationSettings, LadderTier
from proctor.policy.schema import EscalationFields, PolicyFile, format_duration

DEFAULT_TIMEOUT_SECONDS = 86400.0


class UnknownGroup(NotFoundError):
    """A `group:<name>` approver that no file's `groups:` defines."""


def merged_defaults(policies: Iterable[PolicyFile]) -> EscalationFields:
    """Escalation defaults of the files that apply to everyone: first value of each field."""
    merged: dict[str, Any] = {}
    for policy in policies:
        for name in EscalationFields.model_fields:
            value = getattr(policy.escalation, name)
            if value is not None and name not in merged:
                merged[name] = value
    return EscalationFields(**merged)


def resolve_escalation(
    *layers: EscalationFields,
    groups: Mapping[str, tuple[str, ...]],
    default_approvers: bool = False,
) -> EscalationSettings | None:
    """The first value of each field across the layers. Without approvers: None, or with
    `default_approvers` (an escalate rule) settings with no approvers, which mean the
    organisation's default approvers, filled in when a request is decided
    (`with_default_approvers`)."""

    def pick(name: str) -> Any:
        for layer in layers:
            value = getattr(layer, name)
            if value is not None:
                return value
        return None

    approvers = pick("approvers")
    if not approvers and not default_approvers:
        return None
    ladder = pick("ladder") or ()
    grant = pick("grant")
    return EscalationSettings(
        approvers=_expand(approvers or (), groups),
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
        grant_max_seconds=grant.max if grant is not None else None,
    )


def asks_default_approvers(decision: Decision) -> bool:
    """An escalation whose rule named no approvers: the default approvers decide it."""
    return (
        decision.effect is Effect.ESCALATE
        and decision.escalation is not None
        and not decision.escalation.approvers
    )


def with_default_approvers(decision: Decision, approvers: tuple[str, ...]) -> Decision:
    """`decision` asking `approvers` (the default approvers, resolved now, so the workflow
    records who was asked). Too few of them for the quorum and no ladder: it can only time
    out, and then it is denied whatever `on_timeout` says (fail closed)."""
    escalation = decision.escalation
    if not asks_default_approvers(decision) or escalation is None:
        return decision
    update: dict[str, Any] = {"approvers": approvers}
    if len(approvers) < escalation.quorum and not escalation.ladder:
        update["on_timeout"] = "deny"
    return decision.model_copy(update={"escalation": escalation.model_copy(update=update)})


def grant_summary(escalation: EscalationSettings, *merged: EscalationSettings) -> str:
    """What `policy explain` and `policy check` say of standing grants: `, grants: up to 8h`;
    nothing when no rule allows any (the default), and that there are none when only some
    of the `merged` rules' settings allow them."""
    if escalation.grant_max_seconds is not None:
        return f", grants: up to {format_duration(escalation.grant_max_seconds)}"
    if any(settings.grant_max_seconds is not None for settings in merged):
        return ", no standing grants (not every rule allows them)"
    return ""


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


def _flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value
