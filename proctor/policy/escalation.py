"""Escalation settings layered rule → file → defaults, with approver groups expanded.

Each field takes the first value set along the layers, so a rule says only what differs from
its file, and a file only what differs from the defaults files (those that apply to everyone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from proctor.errors import NotFoundError
from proctor.models import EscalationSettings, LadderTier
from proctor.policy.schema import EscalationFields, PolicyFile

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
    *layers: EscalationFields, groups: Mapping[str, tuple[str, ...]]
) -> EscalationSettings | None:
    """The first value of each field across the layers; None without approvers."""

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
