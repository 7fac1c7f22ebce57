"""A pending approval is its card plus the votes so far: who may still answer is read from
both, and a tier joining or a deadline moving changes the card and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proctor.models import ApprovalCard, PendingApproval

DEADLINE = datetime(2026, 1, 2, tzinfo=UTC)


def waiting(**own: object) -> PendingApproval:
    card = ApprovalCard(
        workflow_id="action-r1",
        request_id="r1",
        agent_id="Billing-Agent",
        action="refund",
        params={"amount": 5},
        rule_id="refunds",
        reason="money moves",
        trust_score=80.0,
        deadline=DEADLINE,
        quorum=2,
        approvers=("Alice@example.com", "owner@example.com"),
        request_digest="d1",
        triggered_by="Carol@example.com",
    )
    return PendingApproval.model_validate({"card": card, "owner": "owner@example.com", **own})


def test_a_tier_joining_changes_the_card_and_keeps_the_votes() -> None:
    before = waiting(approvals=("alice@example.com",))
    later = DEADLINE + timedelta(hours=1)

    after = before.with_card(approvers=("a@x", "b@x"), deadline=later)

    assert (after.card.approvers, after.card.deadline) == (("a@x", "b@x"), later)
    assert after.approvals == ("alice@example.com",) and after.owner == before.owner
    assert after.card.model_dump(exclude={"approvers", "deadline"}) == before.card.model_dump(
        exclude={"approvers", "deadline"}
    )
    assert before.card.deadline == DEADLINE  # frozen: the old wait is untouched
    assert before.with_card().card == before.card


@pytest.mark.parametrize(
    ("approver", "owner_may_approve", "refusal"),
    [
        (" ALICE@example.com ", False, None),
        ("owner@example.com", False, "self-approval: the agent's owner cannot decide its requests"),
        ("owner@example.com", True, None),
        ("billing-agent", True, "self-approval: the agent's owner cannot decide its requests"),
        ("carol@example.com", True, "self-approval: the request was made on this person's behalf"),
        ("dave@example.com", True, "not an authorised approver for this rule"),
    ],
)
def test_who_may_answer_is_read_from_the_card_and_the_rule(
    approver: str, owner_may_approve: bool, refusal: str | None
) -> None:
    assert waiting(owner_may_approve=owner_may_approve).refusal(approver) == refusal


def test_an_approver_answers_once_either_way() -> None:
    voted = waiting(
        approvals=("alice@example.com",), denials=("owner@example.com",), owner_may_approve=True
    )
    assert voted.refusal("Alice@example.com") == "this approver already voted"
    assert voted.refusal("owner@example.com") == "this approver already voted"


def test_nobody_in_the_delegation_chain_may_decide() -> None:
    chained = waiting()
    card = chained.card.model_copy(
        update={
            "delegation_chain": ("Dana@example.com", "agent:planner"),
            "approvers": ("dana@example.com", "erin@example.com"),
        }
    )
    pending = chained.model_copy(update={"card": card})

    assert pending.refusal(" DANA@example.com") == (
        "self-approval: this person is in the request's delegation chain"
    )
    assert pending.refusal("erin@example.com") is None
