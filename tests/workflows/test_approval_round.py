"""The approval round's rules hold for every order of votes and clock advances (hypothesis),
plus a few plain examples. The round is pure: no Temporal server, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from proctor.models import (
    ActionStatus,
    ApprovalCard,
    EscalationSettings,
    LadderTier,
    PendingApproval,
    RecordedVote,
    ReinstatementRequest,
    Vote,
)
from proctor_server.workflows.approval_round import (
    AddTier,
    ApprovalRound,
    Due,
    Remind,
    Settle,
    TierCause,
    TierJoined,
    Timer,
    TimerKind,
    Verdict,
)
from proctor_server.workflows.reinstatement import ReinstatementRound
from proctor_server.workflows.steps import vote_payload

STARTED = datetime(2026, 1, 1, tzinfo=UTC)
AGENT, OWNER, HUMAN = "agent-1", "owner", "human"
UNSIGNED = "the vote is not signed"


def pending(escalation: EscalationSettings, approvers: tuple[str, ...]) -> PendingApproval:
    card = ApprovalCard(
        workflow_id="action-r1",
        request_id="r1",
        agent_id=AGENT,
        action="pay",
        params={"amount": 5},
        rule_id="big-payments",
        reason="over the limit",
        approvers=approvers,
        quorum=escalation.quorum,
        deadline=STARTED + timedelta(seconds=escalation.timeout_seconds),
        request_digest="d1",
        triggered_by=HUMAN,
        trust_score=80.0,
    )
    return PendingApproval(card=card, owner=OWNER, owner_may_approve=escalation.owner_may_approve)


def new_round(escalation: EscalationSettings) -> ApprovalRound:
    return ApprovalRound(escalation, pending(escalation, escalation.approvers), STARTED)


def at(seconds: float) -> datetime:
    return STARTED + timedelta(seconds=seconds)


# --- hypothesis: any settings, any interleaving of votes and clock advances -----------------


@dataclass(frozen=True)
class Cast:
    approver: str
    approve: bool
    signed: bool = True


@dataclass(frozen=True)
class Advance:
    seconds: int


@dataclass(frozen=True)
class Shown:
    """A message the workflow sends (a tier's notice, a reminder, the closing note) and the
    card it shows, with how many tiers had joined and how often time had run out by then."""

    message: str
    card: ApprovalCard
    tiers_joined: int
    timeouts: int


@dataclass
class Trace:
    """What happened, in order."""

    votes: list[tuple[Verdict, int]] = field(default_factory=list)
    """Each vote's verdict, with how many tiers had joined when it came."""
    due: list[tuple[datetime, list[Due]]] = field(default_factory=list)
    joined: list[tuple[datetime, AddTier, TierJoined]] = field(default_factory=list)
    deadlines: list[datetime] = field(default_factory=list)
    """The deadline after each batch of due steps."""
    reminded: list[tuple[Remind, tuple[str, ...], int, int]] = field(default_factory=list)
    """Each reminder's recipients, with how many tiers had joined and votes had come."""
    shown: list[Shown] = field(default_factory=list)
    clock: datetime = STARTED
    """How far time got while the round was open."""


def drive(escalation: EscalationSettings, events: list[Cast | Advance], *, late: bool) -> Trace:
    """Play `events` against a round as the workflow does. On time: woken at each due moment.
    Late (a worker that was down): woken once at the end of each advance."""
    round_ = new_round(escalation)
    trace = Trace()

    def show(message: str) -> None:
        fired = [step for _, batch in trace.due for step in batch]
        timeouts = [s for s in fired if isinstance(s, AddTier) and s.cause is TierCause.TIMEOUT]
        trace.shown.append(Shown(message, round_.card, len(trace.joined), len(timeouts)))

    for event in events:
        if round_.settled is not None:
            break
        if isinstance(event, Cast):
            vote = Vote(approver=event.approver, approve=event.approve, note="n")
            verdict = round_.judge(vote, None if event.signed else UNSIGNED, trace.clock)
            trace.votes.append((verdict, len(trace.joined)))
            if verdict.settle is not None:
                show("closing")
            continue
        target = trace.clock + timedelta(seconds=event.seconds)
        while round_.settled is None and round_.next_wake().at <= target:
            now = target if late else round_.next_wake().at
            trace.clock = now
            due = round_.fire_due(now)
            trace.due.append((now, due))
            for call in due:  # one by one, as the workflow carries them out
                if isinstance(call, AddTier):
                    resolved = escalation.ladder[call.index].approvers
                    trace.joined.append((now, call, round_.join_tier(call, resolved)))
                    show("tier")
                elif isinstance(call, Remind):
                    reminded = (call, round_.awaiting(), len(trace.joined), len(trace.votes))
                    trace.reminded.append(reminded)
                    show("reminder")
                else:
                    show("closing")
            trace.deadlines.append(round_.deadline)
        if round_.settled is None:
            trace.clock = target
    return trace


NAMES = ["ann", "bob", "cy", "dee", "ed", OWNER]
VOTERS = [*NAMES, HUMAN, AGENT, "eve"]
CASES = [str.lower, str.upper, str.title]


def spelled(names: Sequence[str], *, blanks: bool = False) -> st.SearchStrategy[str]:
    """A name in any case, as a policy or a directory may write it; with `blanks`, as an
    approver may type it (blanks around)."""
    spellings = [*CASES, lambda name: f" {name.title()} "] if blanks else CASES
    return st.builds(
        lambda name, spell: spell(name.strip()),
        st.sampled_from(names),
        st.sampled_from(spellings),
    )


def same(name: str) -> str:
    """Who a name is: case and surrounding blanks never make two people (said independently of
    the round)."""
    return name.strip().casefold()


def people(names: object) -> set[str]:
    assert isinstance(names, list | tuple | set)
    return {same(name) for name in names}


@st.composite
def escalations(draw: st.DrawFn) -> EscalationSettings:
    ladder = draw(
        st.lists(
            st.builds(
                LadderTier,
                after_seconds=st.integers(1, 12).map(float),
                approvers=st.lists(spelled(NAMES), min_size=1, max_size=3, unique=True).map(tuple),
            ),
            max_size=3,
        )
    )
    return EscalationSettings(
        approvers=tuple(draw(st.lists(spelled(NAMES), min_size=1, max_size=4, unique=True))),
        quorum=draw(st.integers(1, 3)),
        timeout_seconds=float(draw(st.integers(1, 12))),
        on_timeout=draw(st.sampled_from(["deny", "approve", "escalate"])),
        reminders_seconds=tuple(draw(st.lists(st.integers(1, 12).map(float), max_size=3))),
        ladder=tuple(ladder),
        deny_vetoes=draw(st.booleans()),
        owner_may_approve=draw(st.booleans()),
    )


@st.composite
def rounds(draw: st.DrawFn) -> tuple[EscalationSettings, list[Cast | Advance]]:
    """Settings, and votes and clock advances in any order; most votes come from people asked
    (by the first message or a tier), written their own way, the rest from anyone."""
    escalation = draw(escalations())
    asked = [
        *escalation.approvers,
        *(name for tier in escalation.ladder for name in tier.approvers),
    ]
    voters = st.one_of(spelled(asked, blanks=True), spelled(VOTERS, blanks=True))
    events = st.lists(
        st.one_of(
            st.builds(Cast, voters, st.booleans(), st.booleans()),
            st.builds(Advance, st.integers(0, 8)),
        ),
        max_size=25,
    )
    return escalation, draw(events)


Scenario = tuple[EscalationSettings, list[Cast | Advance]]


def asked(escalation: EscalationSettings, trace: Trace, tiers_joined: int) -> set[str]:
    """Who had been asked once `tiers_joined` tiers had joined (as `same` people)."""
    joined = [escalation.ladder[call.index].approvers for _, call, _ in trace.joined]
    return people([*escalation.approvers, *(a for tier in joined[:tiers_joined] for a in tier)])


def may_vote(escalation: EscalationSettings, who: str, approvers: set[str]) -> bool:
    """Who may decide, said independently of the round: an approver asked so far, never the
    human the agent acted for nor the agent, nor its owner unless the rule allows it."""
    who = same(who)
    if who in (HUMAN, AGENT) or (who == OWNER and not escalation.owner_may_approve):
        return False
    return who in approvers


@settings(max_examples=400, deadline=None)
@given(rounds())
def test_votes_count_once_each_and_only_when_they_may(scenario: Scenario) -> None:
    escalation, events = scenario
    trace = drive(escalation, events, late=False)
    approvals: list[str] = []
    denials: list[str] = []
    for verdict, tiers_joined in trace.votes:
        recorded, vote = verdict.recorded, verdict.recorded.vote
        approvers = asked(escalation, trace, tiers_joined)
        signed = recorded.reason != UNSIGNED
        voted = same(vote.approver) in people(approvals + denials)
        eligible = may_vote(escalation, vote.approver, approvers) and not voted
        assert recorded.accepted is (signed and eligible), (vote.approver, approvers)
        if voted and signed:
            assert recorded.reason == "this approver already voted"
        if not recorded.accepted:
            assert verdict.settle is None
            continue
        (approvals if vote.approve else denials).append(vote.approver)
        every_tier_called = tiers_joined == len(escalation.ladder)
        expected = expected_settle(
            escalation, approvers, every_tier_called, vote, approvals, denials
        )
        assert verdict.settle == expected
    assert [v.settle for v, _ in trace.votes[:-1]] == [None] * (len(trace.votes) - 1)


def expected_settle(
    escalation: EscalationSettings,
    approvers: set[str],
    every_tier_called: bool,
    vote: Vote,
    approvals: list[str],
    denials: list[str],
) -> Settle | None:
    """Quorum approves as soon as N distinct accepted approvals arrived; a deny vetoes, or
    (without veto) rejects once quorum can't be reached — by those asked who may ever approve
    and have not denied — and every tier has been called."""
    if vote.approve:
        if len(approvals) == escalation.quorum:
            return Settle(None, "approved", tuple(approvals), vote.note)
        return None
    able = {name for name in approvers if may_vote(escalation, name, approvers)}
    unreachable = len(able - people(denials)) < escalation.quorum and every_tier_called
    if escalation.deny_vetoes or unreachable:
        return Settle(ActionStatus.REJECTED, "rejected", tuple(denials), vote.note)
    return None


@settings(max_examples=400, deadline=None)
@given(rounds())
def test_tiers_reminders_and_the_deadline_fall_due_at_their_times(scenario: Scenario) -> None:
    escalation, events = scenario
    trace = drive(escalation, events, late=False)
    reminders, tiers = fired_once(escalation, trace)
    deadline = at(escalation.timeout_seconds)
    deadlines = [deadline]
    """Each deadline the round reached, the first and every one time running out set."""
    called: set[int] = set()
    for (now, batch), deadline_after in zip(trace.due, trace.deadlines, strict=True):
        for step in batch:
            if isinstance(step, Remind):
                assert now == at(escalation.reminders_seconds[step.number - 1]) < deadline
            elif isinstance(step, AddTier) and step.cause is TierCause.SCHEDULED:
                assert now == at(escalation.ladder[step.index].after_seconds)
                called.add(step.index)
            else:  # the deadline's: one more tier (and another timeout), or the end
                assert step is batch[-1] and now == deadline
                uncalled = sorted(set(range(len(escalation.ladder))) - called)
                if escalation.on_timeout == "escalate" and uncalled:
                    assert step == AddTier(uncalled[0], TierCause.TIMEOUT)
                    called.add(uncalled[0])
                    deadline += timedelta(seconds=escalation.timeout_seconds)
                    deadlines.append(deadline)
                elif escalation.on_timeout == "approve":
                    assert step == Settle(None, "approved", (), "approved by timeout (policy)")
                else:
                    assert step == Settle(ActionStatus.TIMED_OUT, "timed_out")
        assert deadline_after == deadline
    # Everything whose time came while the round was open fell due, but a reminder due at or
    # after the deadline then in force.
    for number, seconds in enumerate(escalation.reminders_seconds, start=1):
        due = at(seconds)
        before_a_deadline = due not in deadlines and due < deadlines[-1]
        assert (number in reminders) is (due <= trace.clock and before_a_deadline)
    for index, tier in enumerate(escalation.ladder):
        if at(tier.after_seconds) <= trace.clock:
            assert index in tiers
    for _, call, joined in trace.joined:
        assert people(escalation.ladder[call.index].approvers) <= people(joined.approvers)
        before = joined.approvers[: len(joined.approvers) - len(joined.joining)]
        assert not people(joined.joining) & people(before)  # nobody asked is asked again
        assert len(people(joined.joining)) == len(joined.joining)


@settings(max_examples=300, deadline=None)
@given(rounds(), st.booleans())
def test_a_reminder_goes_to_each_approver_asked_who_has_not_voted(
    scenario: Scenario, late: bool
) -> None:
    escalation, events = scenario
    trace = drive(escalation, events, late=late)
    for _, recipients, tiers_joined, votes_so_far in trace.reminded:
        votes = [v.recorded for v, _ in trace.votes[:votes_so_far]]
        voted = people([vote.vote.approver for vote in votes if vote.accepted])
        assert people(recipients) == asked(escalation, trace, tiers_joined) - voted
        assert len(people(recipients)) == len(recipients)  # each reminded once


@settings(max_examples=300, deadline=None)
@given(rounds(), st.booleans())
def test_every_message_shows_the_current_deadline_and_approvers(
    scenario: Scenario, late: bool
) -> None:
    escalation, events = scenario
    trace = drive(escalation, events, late=late)
    timeout = timedelta(seconds=escalation.timeout_seconds)
    for shown in trace.shown:
        assert people(shown.card.approvers) == asked(escalation, trace, shown.tiers_joined)
        assert shown.card.deadline == at(escalation.timeout_seconds) + shown.timeouts * timeout


def fired_once(escalation: EscalationSettings, trace: Trace) -> tuple[list[int], list[int]]:
    """The reminders and tiers that fell due, each once, every batch in order: by due time,
    then tiers before reminders, each by number, and the deadline's step last."""
    reminders = [d.number for _, batch in trace.due for d in batch if isinstance(d, Remind)]
    tiers = [call.index for _, call, _ in trace.joined]
    assert len(reminders) == len(set(reminders)) and len(tiers) == len(set(tiers))
    for now, batch in trace.due:
        keys = [due_order(escalation, step, now) for step in batch]
        assert keys == sorted(keys)
    return reminders, tiers


def due_order(escalation: EscalationSettings, step: Due, now: datetime) -> Timer:
    if isinstance(step, AddTier) and step.cause is TierCause.SCHEDULED:
        return Timer(at(escalation.ladder[step.index].after_seconds), TimerKind.LADDER, step.index)
    if isinstance(step, Remind):
        seconds = escalation.reminders_seconds[step.number - 1]
        return Timer(at(seconds), TimerKind.REMINDER, step.number - 1)
    return Timer(now, TimerKind.DEADLINE)


@settings(max_examples=400, deadline=None)
@given(rounds())
@example(
    (
        EscalationSettings(
            approvers=("ann",),
            timeout_seconds=3.0,
            on_timeout="escalate",
            ladder=(LadderTier(after_seconds=4.0, approvers=("ann",)),),
        ),
        [Advance(3), Advance(1)],
    )
)
def test_a_late_wake_does_what_an_on_time_run_would_have_done(scenario: Scenario) -> None:
    """A worker down past several due moments carries out, when it wakes, exactly the steps
    an on-time run would have taken, in the same order, and the votes count the same: no
    reminder due at or after a deadline, no tier called after the round ended."""
    escalation, events = scenario
    late = drive(escalation, events, late=True)
    on_time = drive(escalation, events, late=False)
    assert steps(late) == steps(on_time)
    assert [verdict for verdict, _ in late.votes] == [verdict for verdict, _ in on_time.votes]
    assert [r[:2] for r in late.reminded] == [r[:2] for r in on_time.reminded]
    assert [j for _, _, j in late.joined] == [j for _, _, j in on_time.joined]
    assert late.deadlines[-1:] == on_time.deadlines[-1:]
    for now, batch in late.due:
        assert all(due_order(escalation, step, now).at <= now for step in batch)
        # A batch may be empty: a tier's own timer after time running out called the tier.
        settles = [step for step in batch if isinstance(step, Settle)]
        assert settles == [] or settles == [batch[-1]]


def steps(trace: Trace) -> list[Due]:
    return [step for _, batch in trace.due for step in batch]


# --- examples ---------------------------------------------------------------------------


def escalation(**changes: object) -> EscalationSettings:
    return EscalationSettings.model_validate(
        {"approvers": ("ann", "bob", "cy"), "timeout_seconds": 3600.0, **changes}
    )


def cast(round_: ApprovalRound, who: str, approve: bool = True) -> Verdict:
    return round_.judge(Vote(approver=who, approve=approve), None, STARTED)


def test_quorum_of_two_distinct_approvers_approves() -> None:
    round_ = new_round(escalation(quorum=2))
    assert cast(round_, " Ann ").settle is None
    for again in (cast(round_, "ann"), cast(round_, "ANN", approve=False)):
        assert (again.recorded.accepted, again.recorded.reason) == (
            False,
            "this approver already voted",
        )
    assert cast(round_, "bob").settle == Settle(None, "approved", (" Ann ", "bob"))
    assert round_.pending is None and len(round_.votes) == 4


def test_one_deny_vetoes_and_without_veto_only_an_unreachable_quorum_rejects() -> None:
    vetoing = new_round(escalation(quorum=2))
    assert cast(vetoing, "ann", approve=False).settle == Settle(
        ActionStatus.REJECTED, "rejected", ("ann",)
    )
    patient = new_round(escalation(quorum=2, deny_vetoes=False))
    assert cast(patient, "ann", approve=False).settle is None
    assert cast(patient, "bob", approve=False).settle == Settle(
        ActionStatus.REJECTED, "rejected", ("ann", "bob")
    )


def test_without_veto_a_deny_counts_against_its_approver_whatever_the_case() -> None:
    round_ = new_round(escalation(approvers=("Ann", "bob"), quorum=2, deny_vetoes=False))
    assert cast(round_, " ann", approve=False).settle == Settle(
        ActionStatus.REJECTED, "rejected", (" ann",)
    )


def test_without_veto_an_approver_who_may_never_approve_leaves_no_quorum_to_wait_for() -> None:
    # The owner is named but may not decide its agent's requests: after bob's deny nobody
    # left can approve, so the round rejects now instead of waiting for the deadline.
    round_ = new_round(escalation(approvers=("Owner", "bob", "cy"), quorum=2, deny_vetoes=False))
    assert cast(round_, "bob", approve=False).settle == Settle(
        ActionStatus.REJECTED, "rejected", ("bob",)
    )
    allowed = new_round(
        escalation(
            approvers=("Owner", "bob", "cy"), quorum=2, deny_vetoes=False, owner_may_approve=True
        )
    )
    assert cast(allowed, "bob", approve=False).settle is None


def test_a_tier_asks_nobody_twice_whatever_the_case() -> None:
    round_ = new_round(escalation(approvers=("Ann", "bob"), quorum=2, deny_vetoes=False))
    call = AddTier(0, TierCause.SCHEDULED)
    joined = round_.join_tier(call, ["ANN", "dee", "Dee "])
    assert (joined.joining, joined.approvers) == (("dee",), ("Ann", "bob", "dee"))
    assert cast(round_, "ann", approve=False).settle is None  # bob and dee may still approve
    assert cast(round_, "DEE", approve=False).settle == Settle(
        ActionStatus.REJECTED, "rejected", ("ann", "DEE")
    )


def test_a_reminder_goes_to_nobody_who_voted_either_way() -> None:
    round_ = new_round(escalation(quorum=2, deny_vetoes=False, reminders_seconds=(60.0,)))
    assert cast(round_, " ANN", approve=False).settle is None
    assert cast(round_, "Bob").settle is None
    assert round_.fire_due(at(60)) == [Remind(1)]
    assert round_.awaiting() == ("cy",)


def test_refused_votes_say_why_and_count_nothing() -> None:
    round_ = new_round(escalation(approvers=("ann", OWNER)))
    reasons = [
        round_.judge(Vote(approver="ann", approve=True), UNSIGNED, STARTED).recorded.reason,
        cast(round_, HUMAN).recorded.reason,
        cast(round_, OWNER).recorded.reason,
        cast(round_, "eve").recorded.reason,
    ]
    assert reasons == [
        UNSIGNED,
        "self-approval: the request was made on this person's behalf",
        "self-approval: the agent's owner cannot decide its requests",
        "not an authorised approver for this rule",
    ]
    assert round_.approvals == () and round_.pending is not None


def test_a_tier_due_with_a_reminder_joins_first_and_the_reminder_names_it() -> None:
    round_ = new_round(
        escalation(reminders_seconds=(60.0,), ladder=[{"after_seconds": 60, "approvers": ["dee"]}])
    )
    assert round_.next_wake() == Timer(at(60), TimerKind.LADDER, 0)
    due = round_.fire_due(at(60))
    assert due == [AddTier(0, TierCause.SCHEDULED), Remind(1)]
    joined = round_.join_tier(AddTier(0, TierCause.SCHEDULED), ["dee", "ann"])
    assert (joined.number, joined.joining) == (1, ("dee",))
    assert round_.awaiting() == ("ann", "bob", "cy", "dee")
    assert round_.next_wake() == Timer(at(3600), TimerKind.DEADLINE)


def test_time_running_out_calls_the_next_tier_and_extends_from_the_passed_deadline() -> None:
    round_ = new_round(
        escalation(
            on_timeout="escalate",
            ladder=[
                {"after_seconds": 7200, "approvers": ["dee"]},
                {"after_seconds": 9000, "approvers": ["ed"]},
            ],
        )
    )
    late = at(3600 + 5)  # the worker woke a little late: the deadline counts from history
    call = AddTier(0, TierCause.TIMEOUT)
    assert round_.fire_due(late) == [call]
    assert round_.deadline == at(7200)
    joined = round_.join_tier(call, ["dee"])
    assert joined.joining == ("dee",)
    # The tier's own timer comes and goes (it already joined); then the second deadline.
    assert round_.fire_due(at(7200)) == [AddTier(1, TierCause.TIMEOUT)]


def test_messages_show_the_current_deadline_and_approvers() -> None:
    round_ = new_round(
        escalation(
            on_timeout="escalate",
            reminders_seconds=(3700.0,),
            ladder=[{"after_seconds": 7200, "approvers": ["dee"]}],
        )
    )
    call = AddTier(0, TierCause.TIMEOUT)
    assert round_.fire_due(at(3600)) == [call]
    round_.join_tier(call, ["dee"])
    tier_notice = round_.card  # what the tier's message shows: the new deadline, and dee
    assert (tier_notice.deadline, tier_notice.approvers) == (at(7200), ("ann", "bob", "cy", "dee"))
    assert round_.fire_due(at(3700)) == [Remind(1)]
    assert round_.card == tier_notice  # the reminder's
    settle = cast(round_, "dee").settle
    assert settle is not None and round_.card == tier_notice  # the closing note's


def test_time_running_out_without_tiers_ends_the_round_as_the_policy_says() -> None:
    for on_timeout, settle in [
        ("deny", Settle(ActionStatus.TIMED_OUT, "timed_out")),
        ("escalate", Settle(ActionStatus.TIMED_OUT, "timed_out")),
        ("approve", Settle(None, "approved", (), "approved by timeout (policy)")),
    ]:
        round_ = new_round(escalation(on_timeout=on_timeout))
        assert round_.fire_due(at(3599)) == []
        assert round_.fire_due(at(3600)) == [settle]
        assert round_.settled == settle and round_.pending is None


def test_no_reminder_goes_out_at_or_after_the_deadline() -> None:
    reminders = (1800.0, 3600.0, 5000.0)
    on_time = new_round(escalation(reminders_seconds=reminders))
    assert on_time.fire_due(at(1800)) == [Remind(1)]
    assert on_time.fire_due(at(3600)) == [Settle(ActionStatus.TIMED_OUT, "timed_out")]
    late = new_round(escalation(reminders_seconds=reminders))
    assert late.fire_due(at(6000)) == [Remind(1), Settle(ActionStatus.TIMED_OUT, "timed_out")]


def test_a_late_wake_takes_the_steps_in_the_order_they_fell_due() -> None:
    """Down from before the deadline (3600) to 6000: time ran out first (tier 0 called, the
    deadline moves to 7200), then the reminder at 4000 is due before that deadline, and tier
    0's own time (5000) calls nobody new: the round waits on, as an on-time run would."""
    round_ = new_round(
        escalation(
            on_timeout="escalate",
            reminders_seconds=(4000.0,),
            ladder=[{"after_seconds": 5000, "approvers": ["dee"]}],
        )
    )
    assert round_.fire_due(at(6000)) == [AddTier(0, TierCause.TIMEOUT), Remind(1)]
    assert round_.deadline == at(7200) and round_.settled is None


def test_a_cancel_settles_the_round() -> None:
    round_ = new_round(escalation())
    assert round_.cancel("ops", "wrong account") == Settle(
        ActionStatus.CANCELLED, "cancelled", ("ops",), "wrong account"
    )
    assert round_.pending is None


def test_a_vote_row_says_when_the_vote_was_signed() -> None:
    """Both workflows audit a vote through one payload, which says when it was signed."""
    signed_at = STARTED + timedelta(minutes=3)
    vote = Vote(approver="ann", approve=False, note="no", signed_at=signed_at, key_id="k1")
    row = vote_payload(RecordedVote(vote=vote, accepted=True, reason="denied", at=at(240)))
    assert row == {
        "approve": False,
        "accepted": True,
        "reason": "denied",
        "note": "no",
        "channel": "cli",
        "key_id": "k1",
        "signed_at": signed_at.isoformat(),
    }


def test_a_reinstatement_is_decided_by_one_answer_never_the_requesters() -> None:
    request = ReinstatementRequest(agent_id=AGENT, requested_by="Alice", reason="false positive")
    settings_ = escalation(approvers=("alice", OWNER), quorum=1)
    round_ = ReinstatementRound(request, pending(settings_, ("alice", OWNER)), STARTED)
    assert [cast(round_, who).recorded.reason for who in ("alice ", "eve")] == [
        "the requester cannot decide their own request",
        "not the agent's owner nor an approver named in its policy",
    ]
    assert cast(round_, OWNER, approve=False).settle == Settle(
        ActionStatus.REJECTED, "rejected", (OWNER,)
    )
