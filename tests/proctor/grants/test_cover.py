"""When a stored grant covers a new request, checked from the attacker's side: a database
administrator edits the grant row's columns or plants rows, and only what the votes and the
request they approved signed counts, under the rule as it is now."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from proctor.approvals.keys import VoteSigner
from proctor.canonical import digest
from proctor.grants.cover import Coverage, CoverQuery, coverage, covering_grant
from proctor.models import (
    ActionRequest,
    AgentInfo,
    AgentStatus,
    Decision,
    Effect,
    EscalationSettings,
    ExecutionMode,
    ExecutionSpec,
    GrantScope,
    LadderTier,
    PolicyQuery,
    StandingGrant,
    Vote,
    VoteKeys,
    approver_key,
)
from proctor.policy.decide import condition_context
from proctor.signing import AgentKey

HOUR = 3600.0
AGENT = AgentKey.generate("agent-refunds")
HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)
OWNER = "owner@example.com"


@dataclass
class Directory:
    """The trusted vote keys: approvers' own and approval services'."""

    approvers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    channels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def signer(self, approver: str) -> VoteSigner:
        signer = VoteSigner.generate(approver=approver)
        self.approvers[approver_key(approver)] = (signer.public_key_pem,)
        return signer

    def keys(self, approver: str, channel: str) -> VoteKeys:
        return VoteKeys(
            approver=self.approvers.get(approver_key(approver), ()),
            channel=self.channels.get(channel, ()),
        )


@pytest.fixture
def keys() -> Directory:
    return Directory()


def request_of(
    key: AgentKey = AGENT, action: str = "refund", amount: int = 100, **extra: Any
) -> ActionRequest:
    return key.new_request(action, {"amount": amount}, HANDLER, **extra)


def approval(signer: VoteSigner, request: ActionRequest, grant: GrantScope | None = None) -> Vote:
    return signer.sign(
        workflow_id=request.workflow_id,
        request_digest=digest(request.signing_payload()),
        approve=True,
        grant=grant or scope(),
    )


def scope(
    hours: float = 4, when: str | None = None, uses: int | None = None, rule: str = "refunds"
) -> GrantScope:
    return GrantScope(rule_id=rule, duration_seconds=hours * HOUR, when=when, max_uses=uses)


def stored(request: ActionRequest, *votes: Vote, **columns: Any) -> StandingGrant:
    """The row as the store reads it back (columns as the store wrote them, unless edited)."""
    first = min(vote.signed_at for vote in votes if vote.signed_at is not None)
    grant = votes[0].grant
    assert grant is not None
    row: dict[str, Any] = {
        "grant_id": "g-1",
        "agent_id": request.agent_id,
        "action": request.action,
        "rule_id": grant.rule_id,
        "made_at": first,
        "expires_at": first + timedelta(seconds=grant.duration_seconds),
        "when": grant.when,
        "max_uses": grant.max_uses,
        "made_by": tuple(vote.approver for vote in votes),
        "workflow_id": request.workflow_id,
        "request": request,
        "votes": votes,
    }
    return StandingGrant(**{**row, **columns})


def escalation(
    *,
    rule: str = "refunds",
    approvers: tuple[str, ...] = ("alice", "bob"),
    quorum: int = 1,
    max_hours: float | None = 8,
    **settings: Any,
) -> Decision:
    return Decision(
        effect=Effect.ESCALATE,
        rule_id=rule,
        policy_file="refunds.yaml",
        policy_version="v1",
        reason="refunds need a human",
        escalation=EscalationSettings(
            approvers=approvers,
            quorum=quorum,
            grant_max_seconds=None if max_hours is None else max_hours * HOUR,
            **settings,
        ),
    )


def query(
    request: ActionRequest,
    keys: Directory,
    *,
    decision: Decision | None = None,
    at: datetime | None = None,
    agent_keys: tuple[str, ...] = (AGENT.public_key_pem,),
    chain: tuple[str, ...] = (),
) -> CoverQuery:
    moment = at or request.requested_at + timedelta(minutes=5)
    agent = AgentInfo(
        agent_id=request.agent_id,
        display_name=request.agent_id,
        role="refunds",
        owner=OWNER,
        trust_score=100.0,
        status=AgentStatus.ACTIVE,
    )
    policy_query = PolicyQuery(
        agent=agent,
        action=request.action,
        params=request.params,
        request_id=request.request_id,
        requested_at=request.requested_at,
    )
    return CoverQuery(
        request=request,
        decision=decision or escalation(),
        context=condition_context(policy_query, moment),
        keys=keys.keys,
        agent_keys=agent_keys,
        at=moment,
        chain=chain,
        owner=OWNER,
    )


def covered(grant: StandingGrant, q: CoverQuery) -> Coverage:
    found = coverage(grant, q)
    assert isinstance(found, Coverage), found
    return found


def refused(grant: StandingGrant, q: CoverQuery) -> str:
    found = coverage(grant, q)
    assert isinstance(found, str), found
    return found


def test_a_grant_covers_the_same_agents_next_request_under_its_rule(keys: Directory) -> None:
    made_on = request_of()
    vote = approval(keys.signer("alice"), made_on, scope(4, uses=3))
    assert vote.signed_at is not None

    found = covered(stored(made_on, vote), query(request_of(amount=250), keys))

    assert found.approvers == ("alice",)
    assert found.expires_at == vote.signed_at + timedelta(hours=4)
    assert found.scope == scope(4, uses=3)
    until = found.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert found.reason(uses=1) == (
        f"covered by standing grant g-1 made by alice (rule refunds, until {until}, 1 of 3 uses)"
    )
    assert (
        found.reason()
        == f"covered by standing grant g-1 made by alice (rule refunds, until {until})"
    )


@pytest.mark.parametrize(
    "decision",
    [
        escalation().model_copy(update={"effect": Effect.DENY, "escalation": None}),
        escalation().model_copy(update={"effect": Effect.ALLOW, "escalation": None}),
        escalation(max_hours=None),
    ],
    ids=["deny", "allow", "rule-no-longer-allows-grants"],
)
def test_only_an_escalation_allowing_grants_is_ever_covered(
    keys: Directory, decision: Decision
) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("alice"), made_on))

    assert "allows standing grants" in refused(grant, query(request_of(), keys, decision=decision))


def test_an_expiry_column_pushed_into_the_future_changes_nothing(keys: Directory) -> None:
    made_on = request_of()
    vote = approval(keys.signer("alice"), made_on, scope(1))
    assert vote.signed_at is not None
    grant = stored(made_on, vote, expires_at=vote.signed_at + timedelta(days=30))
    later = vote.signed_at + timedelta(hours=2)

    assert "the grant ended" in refused(grant, query(request_of(), keys, at=later))


def test_a_grant_row_relabelled_for_another_agent_covers_nothing(keys: Directory) -> None:
    made_on = request_of()
    other = AgentKey.generate("agent-payouts")
    grant = stored(made_on, approval(keys.signer("alice"), made_on), agent_id="agent-payouts")

    reason = refused(grant, query(request_of(other), keys, agent_keys=(other.public_key_pem,)))
    assert reason == "the grant was made for another agent or action"


def test_a_grant_never_covers_another_action_of_the_same_agent(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("alice"), made_on), action="refund:bulk")

    assert "another agent or action" in refused(
        grant, query(request_of(action="refund:bulk"), keys)
    )


def test_a_vote_signed_with_the_agents_own_key_never_counts(keys: Directory) -> None:
    made_on = request_of()
    assert isinstance(AGENT.private_key, ed25519.Ed25519PrivateKey)
    as_alice = VoteSigner(AGENT.private_key, approver="alice")
    keys.approvers["alice"] = (as_alice.public_key_pem,)  # even were it registered as hers
    grant = stored(made_on, approval(as_alice, made_on))

    assert "agents never vote" in refused(grant, query(request_of(), keys))


def test_a_vote_by_a_key_outside_the_directory_never_counts(keys: Directory) -> None:
    made_on = request_of()
    forged = VoteSigner.generate(approver="alice")  # the administrator's own key
    keys.signer("alice")
    grant = stored(made_on, approval(forged, made_on))

    assert "neither a registered key of alice" in refused(grant, query(request_of(), keys))


def test_a_vote_edited_after_signing_never_counts(keys: Directory) -> None:
    made_on = request_of()
    vote = approval(keys.signer("alice"), made_on, scope(1))
    widened = vote.model_copy(update={"grant": scope(8)})
    grant = stored(made_on, widened)

    assert "bad vote signature" in refused(grant, query(request_of(), keys))


def test_a_vote_for_another_request_never_counts(keys: Directory) -> None:
    made_on, elsewhere = request_of(), request_of(amount=5)
    grant = stored(made_on, approval(keys.signer("alice"), elsewhere))

    assert "signed for a different workflow" in refused(grant, query(request_of(), keys))


def test_a_request_swapped_under_its_votes_never_counts(keys: Directory) -> None:
    made_on = request_of(amount=5)
    vote = approval(keys.signer("alice"), made_on)
    bigger = made_on.model_copy(update={"params": {"amount": 5000}})
    grant = stored(bigger, vote)

    assert "bound to a different request" in refused(grant, query(request_of(), keys))


def test_a_changed_rule_ends_the_cover(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("alice"), made_on))

    reason = refused(grant, query(request_of(), keys, decision=escalation(rule="refunds-v2")))
    assert "under rule 'refunds', not 'refunds-v2'" in reason


def test_a_rule_column_edited_to_match_changes_nothing(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("alice"), made_on), rule_id="refunds-v2")

    assert "not 'refunds-v2'" in refused(
        grant, query(request_of(), keys, decision=escalation(rule="refunds-v2"))
    )


def test_a_quorum_raised_since_needs_that_many_makers(keys: Directory) -> None:
    made_on = request_of()
    alice = approval(keys.signer("alice"), made_on)
    bob = approval(keys.signer("bob"), made_on)

    one = stored(made_on, alice)
    assert "1 approval(s) for a quorum of 2" in refused(
        one, query(request_of(), keys, decision=escalation(quorum=2))
    )
    two = stored(made_on, alice, bob)
    assert covered(two, query(request_of(), keys, decision=escalation(quorum=2))).approvers == (
        "alice",
        "bob",
    )


def test_the_same_approver_twice_is_one_maker(keys: Directory) -> None:
    made_on = request_of()
    alice = keys.signer("alice")
    grant = stored(made_on, approval(alice, made_on), approval(alice, made_on))

    assert "quorum of 2" in refused(grant, query(request_of(), keys, decision=escalation(quorum=2)))


def test_a_rule_maximum_lowered_since_shortens_the_grant(keys: Directory) -> None:
    made_on = request_of()
    vote = approval(keys.signer("alice"), made_on, scope(8))
    assert vote.signed_at is not None
    grant = stored(made_on, vote)
    lowered = escalation(max_hours=1)

    within = covered(
        grant,
        query(request_of(), keys, decision=lowered, at=vote.signed_at + timedelta(minutes=30)),
    )
    assert within.expires_at == vote.signed_at + timedelta(hours=1)
    after = query(request_of(), keys, decision=lowered, at=vote.signed_at + timedelta(hours=2))
    assert "the grant ended" in refused(grant, after)


def test_a_condition_that_holds_covers_and_one_that_does_not_never(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(
        made_on, approval(keys.signer("alice"), made_on, scope(when="params.amount <= 500"))
    )

    assert covered(grant, query(request_of(amount=500), keys))
    assert "does not hold" in refused(grant, query(request_of(amount=501), keys))


def test_a_when_column_edited_changes_nothing(keys: Directory) -> None:
    made_on = request_of()
    vote = approval(keys.signer("alice"), made_on, scope(when="params.amount <= 500"))
    grant = stored(made_on, vote, when=None)

    assert "does not hold" in refused(grant, query(request_of(amount=9000), keys))


def test_a_condition_that_fails_on_the_request_covers_nothing(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(
        made_on, approval(keys.signer("alice"), made_on, scope(when="params.currency == 'EUR'"))
    )

    assert "its condition failed" in refused(grant, query(request_of(), keys))


def test_a_condition_that_does_not_compile_covers_nothing(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("alice"), made_on, scope(when="params.amount <=")))

    assert "does not compile" in refused(grant, query(request_of(), keys))


def test_a_use_limit_column_edited_away_covers_nothing(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("alice"), made_on, scope(uses=2)), max_uses=None)

    assert "use limit" in refused(grant, query(request_of(), keys))


@pytest.mark.parametrize(
    ("maker", "extra", "chain"),
    [
        ("alice", {"triggered_by": " Alice "}, ()),
        ("alice", {}, ("alice", "agent:agent-refunds")),
        ("agent-refunds", {}, ()),
        (OWNER, {}, ()),
    ],
    ids=["triggered-by", "delegation-chain", "the-agent", "owner"],
)
def test_a_maker_with_a_conflict_on_the_new_request_covers_nothing(
    keys: Directory, maker: str, extra: dict[str, Any], chain: tuple[str, ...]
) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer(maker), made_on))
    decision = escalation(approvers=("alice", "agent-refunds", OWNER))

    reason = refused(grant, query(request_of(**extra), keys, decision=decision, chain=chain))
    assert reason == f"{maker} made the grant and may not decide this request"


def test_the_owner_makes_grants_where_the_rule_lets_the_owner_approve(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer(OWNER), made_on))
    decision = escalation(approvers=(OWNER,), owner_may_approve=True)

    assert covered(grant, query(request_of(), keys, decision=decision)).approvers == (OWNER,)


def test_a_maker_the_rule_no_longer_names_covers_nothing(keys: Directory) -> None:
    made_on = request_of()
    grant = stored(made_on, approval(keys.signer("mallory"), made_on))

    assert refused(grant, query(request_of(), keys)) == "mallory is not an approver of the rule now"
    ladder = escalation(
        approvers=("alice",), ladder=(LadderTier(after_seconds=60, approvers=("mallory",)),)
    )
    assert covered(grant, query(request_of(), keys, decision=ladder))
    by_role = escalation(approvers=("role:refund-leads",))
    assert covered(grant, query(request_of(), keys, decision=by_role))


def test_the_first_grant_that_covers_is_chosen(keys: Directory) -> None:
    made_on = request_of()
    alice = keys.signer("alice")
    narrow = stored(
        made_on, approval(alice, made_on, scope(when="params.amount < 10")), grant_id="g-narrow"
    )
    wide = stored(made_on, approval(alice, made_on), grant_id="g-wide")
    q = query(request_of(amount=100), keys)

    found = covering_grant([narrow, wide], q)
    assert found is not None and found.grant.grant_id == "g-wide"
    assert covering_grant([narrow], q) is None
    assert covering_grant([], replace(q)) is None


def test_a_grant_verified_once_is_checked_again_when_what_it_signed_changes(
    keys: Directory,
) -> None:
    """Signatures are checked once per process for the same signed content and keys; an edit
    after a first good check, or a key deleted from the directory since, is still caught."""
    made_on = request_of()
    alice = keys.signer("alice")
    vote = approval(alice, made_on, scope(1))
    grant = stored(made_on, vote)
    covered(grant, query(request_of(), keys))
    covered(grant.model_copy(update={"uses": 1}), query(request_of(), keys))  # use counts only

    widened = stored(made_on, vote.model_copy(update={"grant": scope(8)}))
    assert "bad vote signature" in refused(widened, query(request_of(), keys))
    covered(grant, query(request_of(), keys))

    keys.approvers.clear()  # alice's key deleted from the trusted directory
    assert "neither a registered key of alice" in refused(grant, query(request_of(), keys))
