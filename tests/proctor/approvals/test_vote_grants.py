"""Votes that ask for a standing grant: the signature covers the scope, only an approval may
ask, and the Slack card offers "Approve for …" only where the rule allows grants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proctor.approvals import blocks
from proctor.approvals.keys import VoteKeyError, VoteSigner
from proctor.attestation import vote_refusal
from proctor.models import ApprovalCard, GrantScope, Vote
from tests.helpers.fake_slack import block_kit_problem

ALICE = "alice@example.com"
DIGEST = "cd" * 32
SCOPE = GrantScope(rule_id="refunds", duration_seconds=3600, when="params.amount <= 600")
CARD = ApprovalCard(
    workflow_id="action-req-7",
    request_id="req-7",
    agent_id="billing-agent",
    action="refund_requests",
    params={"amount": 500},
    rule_id="refunds",
    reason="Refunds move money",
    deadline=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
    quorum=1,
    approvers=(ALICE,),
    request_digest=DIGEST,
)


def refusal(vote: Vote, signer: VoteSigner) -> str | None:
    return vote_refusal(
        vote,
        workflow_id="action-req-7",
        request_digest=DIGEST,
        approver_keys=(signer.public_key_pem,),
        channel_keys=(),
        agent_keys=(),
        escalated_at=datetime.now(UTC) - timedelta(minutes=1),
    )


def test_a_vote_with_a_grant_is_signed_over_its_scope() -> None:
    signer = VoteSigner.generate(approver=ALICE)
    vote = signer.sign(workflow_id="action-req-7", request_digest=DIGEST, approve=True, grant=SCOPE)
    assert vote.grant == SCOPE
    assert refusal(vote, signer) is None
    for wider in (
        SCOPE.model_copy(update={"duration_seconds": 8 * 3600}),
        SCOPE.model_copy(update={"when": None}),
        SCOPE.model_copy(update={"rule_id": "wires"}),
        None,
    ):
        tampered = vote.model_copy(update={"grant": wider})
        assert refusal(tampered, signer) == "bad vote signature: it does not match the vote"


def test_a_vote_signed_without_a_grant_cannot_be_given_one() -> None:
    signer = VoteSigner.generate(approver=ALICE)
    vote = signer.sign(workflow_id="action-req-7", request_digest=DIGEST, approve=True)
    assert vote.grant is None and refusal(vote, signer) is None
    assert refusal(vote.model_copy(update={"grant": SCOPE}), signer) == (
        "bad vote signature: it does not match the vote"
    )


def test_only_an_approval_asks_for_a_grant() -> None:
    signer = VoteSigner.generate(approver=ALICE)
    with pytest.raises(VoteKeyError, match="only an approval"):
        signer.sign(
            workflow_id="action-req-7",
            request_digest=DIGEST,
            approve=False,
            note="no",
            grant=SCOPE,
        )


def test_a_channel_key_signs_a_grant_for_the_human_it_vouches_for() -> None:
    slack = VoteSigner.generate(channel="slack")
    vote = slack.sign(
        workflow_id="action-req-7",
        request_digest=DIGEST,
        approve=True,
        approver=ALICE,
        grant=SCOPE,
    )
    assert (vote.approver, vote.channel, vote.grant) == (ALICE, "slack", SCOPE)
    assert (
        vote_refusal(
            vote,
            workflow_id="action-req-7",
            request_digest=DIGEST,
            approver_keys=(),
            channel_keys=(slack.public_key_pem,),
            agent_keys=(),
            escalated_at=datetime.now(UTC) - timedelta(minutes=1),
        )
        is None
    )


def grant_buttons(card: ApprovalCard) -> list[dict[str, object]]:
    message = blocks.approval_request(card, card.params)
    assert block_kit_problem(message) is None
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    return [e for e in actions["elements"] if e["action_id"] == blocks.APPROVE_FOR_A_WHILE]


def test_the_grant_button_shows_only_where_the_rule_allows_grants() -> None:
    assert grant_buttons(CARD) == []
    assert blocks.button_grant_seconds(CARD) is None


@pytest.mark.parametrize(
    ("allowed", "label", "seconds"),
    [
        (8 * 3600.0, "Approve for 1 h", 3600.0),
        (3600.0, "Approve for 1 h", 3600.0),
        (1800.0, "Approve for 30 min", 1800.0),
        (90.0, "Approve for 1 min 30 s", 90.0),
    ],
)
def test_the_grant_button_asks_for_an_hour_or_the_rules_max(
    allowed: float, label: str, seconds: float
) -> None:
    card = CARD.model_copy(update={"grant_max_seconds": allowed})
    [button] = grant_buttons(card)
    assert button["text"] == {"type": "plain_text", "text": label, "emoji": True}
    assert button["value"] == blocks.ButtonValue(w=card.workflow_id, d=DIGEST).encode()
    assert blocks.button_grant_seconds(card) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (60, "1 min"),
        (1800, "30 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (8 * 3600, "8 h"),
        (86400, "1 d"),
        (30 * 86400 + 3600, "30 d 1 h"),
        (0.2, "0 s"),
    ],
)
def test_spans_read_as_people_say_them(seconds: float, text: str) -> None:
    assert blocks.span(seconds) == text
