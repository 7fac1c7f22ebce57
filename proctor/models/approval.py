"""What humans send a waiting request (votes, cancellations) and what they see of it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, JsonValue

from proctor.models.base import Frozen


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

    def signing_payload(self) -> dict[str, JsonValue]:
        """What the signature covers: every field but the signature itself."""
        return self.model_dump(mode="json", exclude={"signature"})


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
