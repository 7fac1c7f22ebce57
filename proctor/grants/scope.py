"""The grant a round's approvals agree on: pure, deterministic, used by the workflow when a
round approves and by the judge when a stored grant is used, so both derive the same scope and
expiry from the same signed votes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from proctor.models import GrantScope, Vote, approver_key


@dataclass(frozen=True)
class AgreedGrant:
    scope: GrantScope
    expires_at: datetime
    votes: tuple[Vote, ...]
    """One approving vote per approver, each carrying a scope."""


def asks_for_grant(approvals: Sequence[Vote]) -> bool:
    return any(vote.grant is not None for vote in approvals)


def agreed_grant(
    approvals: Sequence[Vote], *, rule_id: str, max_seconds: float | None, quorum: int
) -> AgreedGrant | str:
    """The grant `approvals` (accepted approving votes) make under a rule allowing grants of up
    to `max_seconds`, or why they make none.

    Every approval that reached the quorum must ask for a grant, for this rule: one approver
    can't widen what a quorum decided. The scope is the narrowest of theirs: the shortest
    duration (capped by the rule), every `when` at once, the fewest uses; it runs from the
    earliest signature."""
    if max_seconds is None:
        return "the rule allows no standing grants (`grant: {max: ...}`)"
    voters: dict[str, Vote] = {}
    for vote in approvals:
        voters.setdefault(approver_key(vote.approver), vote)
    votes = tuple(voters.values())
    if len(votes) < quorum:
        return f"{len(votes)} approval(s) for a quorum of {quorum}"
    scopes = [vote.grant for vote in votes]
    if any(scope is None for scope in scopes):
        without = [v.approver for v in votes if v.grant is None]
        return f"not every approval asked for a grant ({', '.join(without)} did not)"
    asked = [scope for scope in scopes if scope is not None]
    if any(scope.rule_id != rule_id for scope in asked):
        return f"a vote asked for a grant under another rule than {rule_id!r}"
    signed = [vote.signed_at for vote in votes if vote.signed_at is not None]
    if len(signed) != len(votes):
        return "an approval carries no signing time"
    duration = min(min(scope.duration_seconds for scope in asked), max_seconds)
    conditions = sorted({scope.when for scope in asked if scope.when is not None})
    uses = [scope.max_uses for scope in asked if scope.max_uses is not None]
    scope = GrantScope(
        rule_id=rule_id,
        duration_seconds=duration,
        when=_all_of(conditions),
        max_uses=min(uses) if uses else None,
    )
    return AgreedGrant(scope, min(signed) + timedelta(seconds=duration), votes)


def _all_of(conditions: Sequence[str]) -> str | None:
    if len(conditions) <= 1:
        return conditions[0] if conditions else None
    return " && ".join(f"({condition})" for condition in conditions)
