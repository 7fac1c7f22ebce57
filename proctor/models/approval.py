"""What humans send a waiting request (votes, cancellations) and what they see of it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, JsonValue

from proctor.models.base import Frozen


class GrantScope(Frozen):
    """What an approving vote grants beyond the request it approves: the same agent and action,
    under the same rule, for `duration_seconds` from the vote's signature, optionally only
    while `when` (CEL, as in rule conditions) holds and for at most `max_uses` requests."""

    rule_id: str = Field(min_length=1, max_length=256)
    """The rule that escalated the request: the grant covers only what that rule escalates."""
    duration_seconds: float = Field(gt=0, le=30 * 86400.0)
    """At most 30 days, whatever a rule allows; a rule's `grant: {max: ...}` caps it further."""
    when: str | None = Field(default=None, min_length=1, max_length=2000)
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)


def approver_key(name: str) -> str:
    """Who a name stands for: case and surrounding blanks never make two people. Every
    comparison of approvers (who voted, who is asked, who may decide) goes through it."""
    return name.strip().casefold()


class Vote(Frozen):
    """One human's answer to an escalated request, as signalled to the workflow. It counts
    only if signed by the approver's own key or by the approval service named as `channel`."""

    approver: str = Field(min_length=1, max_length=256)
    approve: bool
    note: str | None = Field(default=None, max_length=4000)
    channel: str = Field(default="cli", min_length=1, max_length=64)
    request_digest: str | None = None
    """Must match the digest of the waiting request (binds a vote to one action)."""
    workflow_id: str = ""
    signed_at: datetime | None = None
    key_id: str = ""
    """Fingerprint of the signing key (SHA-256 of its SubjectPublicKeyInfo)."""
    signature: str = Field(default="", max_length=4096)
    grant: GrantScope | None = None
    """Approve and remember: the standing grant this approval also makes, if the rule allows
    grants and the round approves (see proctor.models.grants)."""

    def signing_payload(self) -> dict[str, JsonValue]:
        """What the signature covers: every field but the signature itself (a vote without a
        grant signs what it signed before grants existed)."""
        exclude = {"signature"} if self.grant is not None else {"signature", "grant"}
        return self.model_dump(mode="json", exclude=exclude)


class VoteKeyQuery(Frozen):
    approver: str
    channel: str


class VoteKeys(Frozen):
    """The trusted public keys that may sign one vote, read from the key directories."""

    approver: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()


class RecordedVote(Frozen):
    vote: Vote
    accepted: bool
    reason: str
    at: datetime


class CancelRequest(Frozen):
    """`proctor cancel`: stop a governed action that has not started executing."""

    by: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=4000)


class ApprovalCard(Frozen):
    """What an approval message shows: the request, the rule, the deadline."""

    workflow_id: str
    request_id: str
    agent_id: str
    action: str
    params: dict[str, JsonValue]
    """Raw: the notifier redacts them with the policy's audit rules before sending."""
    rule_id: str
    reason: str
    trust_score: float | None = None
    """The agent's score when it asked; None for a reinstatement (no request of its own)."""
    deadline: datetime
    quorum: int
    approvers: tuple[str, ...]
    request_digest: str
    severity: str | None = None
    triggered_by: str | None = None
    """The human the agent acted for (always refused as approver)."""
    delegation_chain: tuple[str, ...] = ()
    """The verified delegation chain, root first (`alice`, `agent:a`): none of them approves."""
    grant_max_seconds: float | None = None
    """The longest standing grant an approval may make under this rule (None: no grants)."""


class PendingApproval(Frozen):
    """A request waiting for humans (the workflow's `progress` query, `approvals list`): what
    its approval messages show, and who has voted and who may."""

    card: ApprovalCard
    approvals: tuple[str, ...] = ()
    denials: tuple[str, ...] = ()
    owner: str | None = None
    """The agent's owner (refused as approver unless the rule allows it)."""
    owner_may_approve: bool = False

    def refusal(self, approver: str) -> str | None:
        """Why `approver` may not vote on this request, or None if they may. Names compare
        by `approver_key`: case and blanks never make two people."""
        conflict = self.conflict_of_interest(approver)
        if conflict is not None:
            return conflict
        who = approver_key(approver)
        if who not in {approver_key(name) for name in self.card.approvers}:
            return "not an authorised approver for this rule"
        if who in {approver_key(name) for name in (*self.approvals, *self.denials)}:
            return "this approver already voted"
        return None

    def conflict_of_interest(self, approver: str) -> str | None:
        """Why `approver` can never decide this request whatever the rule names: the human
        the agent acted for, the agent itself, its owner unless the rule allows it."""
        who = approver_key(approver)
        card = self.card
        if card.triggered_by and who == approver_key(card.triggered_by):
            return "self-approval: the request was made on this person's behalf"
        if who in {approver_key(principal) for principal in card.delegation_chain}:
            return "self-approval: this person is in the request's delegation chain"
        if who == approver_key(card.agent_id) or (
            not self.owner_may_approve and self.owner and who == approver_key(self.owner)
        ):
            return "self-approval: the agent's owner cannot decide its requests"
        return None

    def with_card(
        self, *, approvers: tuple[str, ...] | None = None, deadline: datetime | None = None
    ) -> PendingApproval:
        """The same wait once a ladder tier joined (`approvers`) or the deadline moved."""
        changes = {"approvers": approvers, "deadline": deadline}
        card = self.card.model_copy(update={k: v for k, v in changes.items() if v is not None})
        return self.model_copy(update={"card": card})
