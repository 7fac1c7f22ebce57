"""When a stored standing grant covers a new request: checked on every use from signed data
only, never from the grant row's own columns.

A database administrator can edit any column of `standing_grants` or insert rows, so nothing
here trusts them: the agent and action come from the request the votes signed, the rule, the
scope and the expiry are re-derived from the votes (`agreed_grant`) under the rule *as it is
now*, and every vote's signature is checked against the trusted key directories. What signed
data cannot say (how many times a grant was used, whether it was revoked) is the store's: its
atomic `use` counts uses against the row, and every use and revocation is a row of the
hash-chained audit log (`grant_used`, `grant_revoked`), so resetting `uses` or clearing a
revocation is detected when the chain is verified against its signed checkpoints.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from proctor.attestation import vote_refusal
from proctor.canonical import digest
from proctor.grants.scope import AgreedGrant, agreed_grant
from proctor.models import (
    ActionRequest,
    Decision,
    Effect,
    EscalationSettings,
    GrantScope,
    StandingGrant,
    Vote,
    VoteKeys,
    approver_key,
    is_approver_reference,
)
from proctor.policy.conditions import (
    Condition,
    ConditionEvaluationError,
    ConditionSyntaxError,
    compile_condition,
)

KeyLookup = Callable[[str, str], VoteKeys]
"""The trusted keys that may sign a vote of `approver` through `channel`."""


@dataclass(frozen=True)
class CoverQuery:
    """The new request as judged now: what a stored grant is checked against."""

    request: ActionRequest
    decision: Decision
    """The policy decision for the request now (the rule that escalates it, its settings)."""
    context: Mapping[str, Any]
    """What rule conditions see of the request (`condition_context`): a grant's `when` too."""
    keys: KeyLookup
    agent_keys: tuple[str, ...]
    """The requesting agent's public keys: a vote signed by one never counts."""
    at: datetime
    chain: tuple[str, ...] = ()
    """The request's verified delegation chain: none of them may have made the grant."""
    owner: str | None = None
    """The agent's owner: never a grant maker unless the rule lets the owner approve."""


@dataclass(frozen=True)
class Coverage:
    """A grant that covers the request, with what its signed votes say about it."""

    grant: StandingGrant
    scope: GrantScope
    expires_at: datetime
    approvers: tuple[str, ...]

    def reason(self, uses: int | None = None) -> str:
        """The decision's reason: whose grant, under which rule, until when."""
        limit = self.scope.max_uses
        counted = f", {uses} of {limit} uses" if limit is not None and uses is not None else ""
        until = self.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"covered by standing grant {self.grant.grant_id} made by "
            f"{', '.join(self.approvers)} (rule {self.scope.rule_id}, until {until}{counted})"
        )


def covering_grants(grants: Sequence[StandingGrant], query: CoverQuery) -> Iterator[Coverage]:
    """The grants among `grants` that cover the request, in their order."""
    for grant in grants:
        found = coverage(grant, query)
        if isinstance(found, Coverage):
            yield found


def covering_grant(grants: Sequence[StandingGrant], query: CoverQuery) -> Coverage | None:
    """The first grant that covers the request, if any."""
    return next(covering_grants(grants, query), None)


def coverage(grant: StandingGrant, query: CoverQuery) -> Coverage | str:
    """The grant's cover of the request, or why it gives none."""
    settings = grantable(query.decision)
    if settings is None or settings.grant_max_seconds is None:
        return "the request is not escalated by a rule that allows standing grants"
    signed = grant.request
    if (signed.agent_id, signed.action) != (query.request.agent_id, query.request.action):
        return "the grant was made for another agent or action"
    refusal = _votes_refusal(grant, query)
    if refusal is not None:
        return refusal
    agreed = agreed_grant(
        grant.votes,
        rule_id=query.decision.rule_id,
        max_seconds=settings.grant_max_seconds,
        quorum=settings.quorum,
    )
    if isinstance(agreed, str):
        return f"its votes make no grant under the rule now: {agreed}"
    refusal = _scope_refusal(grant, agreed, query) or _makers_refusal(agreed, settings, query)
    if refusal is not None:
        return refusal
    makers = tuple(vote.approver for vote in agreed.votes)
    return Coverage(grant, agreed.scope, agreed.expires_at, makers)


def grantable(decision: Decision) -> EscalationSettings | None:
    """The escalation a grant may stand in for: only an escalate, never an allow or a deny."""
    if decision.effect is not Effect.ESCALATE or decision.escalation is None:
        return None
    return decision.escalation


def _votes_refusal(grant: StandingGrant, query: CoverQuery) -> str | None:
    """Why one of the stored votes is not a signed approval of the grant's request asking
    for a grant under the rule that escalates the new request.

    The signatures are checked once per process for the same signed request, votes and
    trusted keys (`_VERIFIED`): a grant used again is compared, not re-verified, and any
    change to what was signed, or to the keys the directory holds now, verifies anew."""
    if not grant.votes:
        return "the grant carries no votes"
    for vote in grant.votes:
        refusal = _scope_of_vote_refusal(vote, query)
        if refusal is not None:
            return f"vote of {vote.approver}: {refusal}"
    keys = tuple(query.keys(vote.approver, vote.channel) for vote in grant.votes)
    signed = _SignedGrant(grant.request, grant.votes, keys, query.agent_keys)
    if _VERIFIED.get(grant.grant_id) == signed:
        _VERIFIED.move_to_end(grant.grant_id)
        return None
    request_digest = digest(grant.request.signing_payload())
    for vote, vote_keys in zip(grant.votes, keys, strict=True):
        refusal = _signature_refusal(vote, grant.request, request_digest, vote_keys, query)
        if refusal is not None:
            return f"vote of {vote.approver}: {refusal}"
    _VERIFIED[grant.grant_id] = signed
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return None


@dataclass(frozen=True)
class _SignedGrant:
    """Everything a grant's signature check depends on: equal means verified already."""

    request: ActionRequest
    votes: tuple[Vote, ...]
    keys: tuple[VoteKeys, ...]
    agent_keys: tuple[str, ...]


_VERIFIED: OrderedDict[str, _SignedGrant] = OrderedDict()
_VERIFIED_MAX = 4096


def forget_verified() -> None:
    """Check every grant's signatures afresh at its next use (the benchmark's first-use cost)."""
    _VERIFIED.clear()


def _scope_of_vote_refusal(vote: Vote, query: CoverQuery) -> str | None:
    """What a vote must say, whatever its signature: an approval asking for a grant under the
    rule that escalates the request now, with a signing time."""
    if not vote.approve:
        return "not an approval"
    if vote.grant is None:
        return "asks for no grant"
    if vote.grant.rule_id != query.decision.rule_id:
        return f"a grant under rule {vote.grant.rule_id!r}, not {query.decision.rule_id!r}"
    if vote.signed_at is None:
        return "carries no signing time"
    return None


def _signature_refusal(
    vote: Vote, request: ActionRequest, request_digest: str, keys: VoteKeys, query: CoverQuery
) -> str | None:
    assert vote.signed_at is not None  # checked by _scope_of_vote_refusal
    return vote_refusal(
        vote,
        workflow_id=request.workflow_id,
        request_digest=request_digest,
        approver_keys=keys.approver,
        channel_keys=keys.channel,
        agent_keys=query.agent_keys,
        escalated_at=vote.signed_at,
    )


def _scope_refusal(grant: StandingGrant, agreed: AgreedGrant, query: CoverQuery) -> str | None:
    """Why the signed scope does not stretch to this request now."""
    if query.at >= agreed.expires_at:
        return f"the grant ended at {agreed.expires_at.isoformat()} (as signed, capped by the rule)"
    if grant.max_uses != agreed.scope.max_uses:
        return "the stored use limit is not the one the votes signed"
    if agreed.scope.when is None:
        return None
    condition = _condition(agreed.scope.when)
    if isinstance(condition, str):
        return f"its condition does not compile: {condition}"
    try:
        holds = condition.evaluate(query.context)
    except ConditionEvaluationError as exc:
        return f"its condition failed on this request: {exc}"
    return None if holds else f"its condition {agreed.scope.when!r} does not hold"


def _makers_refusal(
    agreed: AgreedGrant, settings: EscalationSettings, query: CoverQuery
) -> str | None:
    """Why one of the grant's makers may not decide this request: the agent itself, the human
    it acts for, anyone in its delegation chain, its owner (unless the rule allows), or
    someone the rule does not name (when it names people, not roles or groups)."""
    request = query.request
    conflicts = {approver_key(name) for name in (request.agent_id, *query.chain)}
    if request.triggered_by:
        conflicts.add(approver_key(request.triggered_by))
    if query.owner and not settings.owner_may_approve:
        conflicts.add(approver_key(query.owner))
    named = _named_approvers(settings)
    for vote in agreed.votes:
        who = approver_key(vote.approver)
        if who in conflicts:
            return f"{vote.approver} made the grant and may not decide this request"
        if named is not None and who not in named:
            return f"{vote.approver} is not an approver of the rule now"
    return None


def _named_approvers(settings: EscalationSettings) -> frozenset[str] | None:
    """Everyone the escalation names, ladder included; None when it names a role or group
    (resolved by a directory at escalation, which pure code can't consult)."""
    names = (*settings.approvers, *(n for tier in settings.ladder for n in tier.approvers))
    if any(is_approver_reference(name) for name in names):
        return None
    return frozenset(approver_key(name) for name in names)


@lru_cache(maxsize=512)
def _condition(source: str) -> Condition | str:
    """Compiled once per distinct source (a grant is checked on every request it may cover)."""
    try:
        return compile_condition("when", source)
    except ConditionSyntaxError as exc:
        return str(exc)
