"""The grant a round's approvals agree on: every approval of the quorum must ask for one,
under the rule that escalated; the narrowest of each part wins; it runs from the earliest
signature and never past the rule's maximum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from proctor.grants.scope import AgreedGrant, agreed_grant, asks_for_grant
from proctor.models import GrantScope, Vote

SIGNED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = 3600.0


def approval(
    approver: str,
    grant: GrantScope | None = None,
    *,
    minutes_later: int = 0,
) -> Vote:
    return Vote(
        approver=approver,
        approve=True,
        workflow_id="action-r1",
        request_digest="d1",
        signed_at=SIGNED + timedelta(minutes=minutes_later),
        key_id="k",
        signature="s",
        grant=grant,
    )


def scope(
    hours: float = 1, when: str | None = None, uses: int | None = None, rule: str = "refunds"
) -> GrantScope:
    return GrantScope(rule_id=rule, duration_seconds=hours * HOUR, when=when, max_uses=uses)


def agreed(votes: list[Vote], *, max_hours: float | None = 8, quorum: int = 1) -> AgreedGrant:
    made = agreed_grant(
        votes,
        rule_id="refunds",
        max_seconds=None if max_hours is None else max_hours * HOUR,
        quorum=quorum,
    )
    assert isinstance(made, AgreedGrant), made
    return made


def refusal(votes: list[Vote], *, max_hours: float | None = 8, quorum: int = 1) -> str:
    made = agreed_grant(
        votes,
        rule_id="refunds",
        max_seconds=None if max_hours is None else max_hours * HOUR,
        quorum=quorum,
    )
    assert isinstance(made, str), made
    return made


def test_one_approver_grants_what_they_asked_from_their_signature() -> None:
    made = agreed([approval("alice", scope(2, "params.amount <= 600", 5))])

    assert made.scope == scope(2, "params.amount <= 600", 5)
    assert made.expires_at == SIGNED + timedelta(hours=2)
    assert [v.approver for v in made.votes] == ["alice"]


def test_the_rules_maximum_caps_the_duration() -> None:
    made = agreed([approval("alice", scope(24))], max_hours=8)

    assert made.scope.duration_seconds == 8 * HOUR
    assert made.expires_at == SIGNED + timedelta(hours=8)


def test_a_rule_without_grants_makes_none() -> None:
    assert "allows no standing grants" in refusal([approval("alice", scope())], max_hours=None)


def test_a_quorum_grants_only_what_every_approval_asked_narrowest_of_each() -> None:
    made = agreed(
        [
            approval("alice", scope(4, "params.amount <= 600", 10)),
            approval("bob", scope(2, "params.currency == 'EUR'"), minutes_later=30),
        ],
        quorum=2,
    )

    assert made.scope.duration_seconds == 2 * HOUR
    assert made.scope.max_uses == 10
    assert made.scope.when == "(params.amount <= 600) && (params.currency == 'EUR')"
    assert made.expires_at == SIGNED + timedelta(hours=2)  # from the earliest signature


def test_one_approver_of_a_quorum_cannot_grant_alone() -> None:
    reason = refusal([approval("alice", scope()), approval("bob")], quorum=2)

    assert "bob did not" in reason


def test_the_same_approver_twice_is_one_approval() -> None:
    reason = refusal(
        [approval("alice", scope()), approval(" ALICE ", scope(), minutes_later=1)], quorum=2
    )

    assert "1 approval(s) for a quorum of 2" in reason


def test_a_grant_asked_under_another_rule_is_refused() -> None:
    assert "another rule" in refusal([approval("alice", scope(rule="payments"))])


def test_asks_for_grant_sees_any_vote_carrying_one() -> None:
    assert asks_for_grant([approval("bob"), approval("alice", scope())])
    assert not asks_for_grant([approval("bob")])


@given(
    hours=st.lists(st.floats(min_value=0.01, max_value=48), min_size=1, max_size=4),
    uses=st.lists(st.one_of(st.none(), st.integers(1, 50)), min_size=4, max_size=4),
    max_hours=st.floats(min_value=0.01, max_value=48),
)
def test_the_agreed_grant_is_never_wider_than_any_approvers(
    hours: list[float], uses: list[int | None], max_hours: float
) -> None:
    votes = [
        approval(f"approver{i}", scope(h, uses=uses[i]), minutes_later=i)
        for i, h in enumerate(hours)
    ]

    made = agreed(votes, max_hours=max_hours, quorum=len(votes))

    for vote in votes:
        assert vote.grant is not None and vote.signed_at is not None
        assert made.scope.duration_seconds <= vote.grant.duration_seconds
        assert made.expires_at <= vote.signed_at + timedelta(seconds=vote.grant.duration_seconds)
        if vote.grant.max_uses is not None:
            assert made.scope.max_uses is not None
            assert made.scope.max_uses <= vote.grant.max_uses
    assert made.scope.duration_seconds <= max_hours * HOUR


def test_a_vote_without_a_grant_signs_what_it_signed_before_grants() -> None:
    assert "grant" not in approval("alice").signing_payload()
    assert approval("alice", scope()).signing_payload()["grant"] == scope().model_dump(mode="json")
