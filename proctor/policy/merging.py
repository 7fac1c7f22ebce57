"""Escalate rules that apply to one request together: one escalation, the strictest of each.

Adding a file can only make what it touches stricter, so every field takes the value that asks
more of the humans and gives the agent less (README, Policy: "Several rules of one effect").
Nothing here depends on file names or on the order the rules are given in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from proctor.models import EscalationSettings, LadderTier, is_approver_reference
from proctor.policy.compiled import CompiledRule

OnTimeout = Literal["deny", "escalate", "approve"]
_STRICTEST_FIRST: tuple[OnTimeout, ...] = ("deny", "escalate", "approve")
_SEVERITIES = ("low", "medium", "high", "critical")


def merged_escalation(rules: Sequence[CompiledRule]) -> EscalationSettings | None:
    """The escalation that satisfies every one of `rules` (escalate rules, most specific
    first), or None when no approver can: their named approvers have nobody in common, or too
    few for the quorum."""
    every = [rule.escalation for rule in rules if rule.escalation is not None]
    named = [r.escalation for r in rules if r.escalation is not None and r.approvers_named]
    if not every:
        return None
    quorum = max(s.quorum for s in every)
    # Rules that leave approvers to the defaults all have the same ones and narrow nothing.
    approvers = every[0].approvers
    if named:
        first, *others = named
        approvers = tuple(a for a in first.approvers if all(a in s.approvers for s in others))
        plain_names_only = not any(is_approver_reference(a) for a in approvers)
        if not approvers or (plain_names_only and len(approvers) < quorum):
            return None
    on_timeout = min((s.on_timeout for s in every), key=_STRICTEST_FIRST.index)
    deadlines = [s.timeout_seconds for s in every if s.on_timeout == on_timeout]
    severities = [s.severity for s in every if s.severity is not None]
    return EscalationSettings(
        approvers=approvers,
        quorum=quorum,
        # The rules whose timeout outcome prevails set the deadline: the first of them to give
        # up denies (or calls the next tier); no rule's request is auto-approved before its own.
        timeout_seconds=max(deadlines) if on_timeout == "approve" else min(deadlines),
        on_timeout=on_timeout,
        reminders_seconds=tuple(sorted({r for s in every for r in s.reminders_seconds})),
        ladder=_ladder(every),
        severity=max(severities, key=_SEVERITIES.index) if severities else None,
        channel=next((s.channel for s in every if s.channel is not None), None),
        direct_messages=any(s.direct_messages for s in every),
        deny_vetoes=any(s.deny_vetoes for s in every),
        owner_may_approve=all(s.owner_may_approve for s in every),
        grant_max_seconds=_grant_max(every),
    )


def _grant_max(every: list[EscalationSettings]) -> float | None:
    """Grants only if every rule allows them, and no longer than the shortest it allows: one
    file's rule must not let an approval of another's stand for later requests."""
    limits = [s.grant_max_seconds for s in every]
    if any(limit is None for limit in limits):
        return None
    return min(limit for limit in limits if limit is not None)


def _ladder(every: list[EscalationSettings]) -> tuple[LadderTier, ...]:
    """Every rule's tiers, soonest first, each once: a stuck request reaches everyone any of
    the rules would have called."""
    tiers = {(t.after_seconds, t.approvers): t for s in every for t in s.ladder}
    return tuple(tiers[key] for key in sorted(tiers))
