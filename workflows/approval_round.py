"""ApprovalRound: the rules of one escalation, as plain deterministic code.

Who may still decide, what a vote counts for, when quorum, a veto or the deadline ends the
round, when reminders and ladder tiers fall due: all of it held in one object that reads no
clock and does no I/O. The workflow feeds it votes and the time and carries out what it
answers (audit, notify, close), so the rules are tested for every order of events without a
Temporal server, and replays decide exactly as the first run did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from proctor.models import (
    ActionStatus,
    ApprovalCard,
    ClosedAs,
    EscalationSettings,
    PendingApproval,
    RecordedVote,
    Vote,
    approver_key,
)


class TimerKind(IntEnum):
    """What falls due. The order breaks ties between timers due at the same moment: a ladder
    tier joins before a reminder goes out (so the reminder names the tier too), and the
    deadline is judged last (a reminder due at the deadline is not sent)."""

    LADDER = 0
    REMINDER = 1
    DEADLINE = 2


@dataclass(frozen=True, order=True)
class Timer:
    at: datetime
    kind: TimerKind
    index: int = 0
    """Which reminder or ladder tier (from 0)."""


class TierCause(StrEnum):
    SCHEDULED = "scheduled"
    TIMEOUT = "timeout"
    """The deadline passed with `on_timeout: escalate` and a tier still to call: the deadline
    has moved on by one more timeout, counted from the one that passed (history's time, never
    a task's clock)."""


@dataclass(frozen=True)
class AddTier:
    """Call ladder tier `index` in: the workflow resolves its approvers and hands them to
    `ApprovalRound.join_tier`."""

    index: int
    cause: TierCause


@dataclass(frozen=True)
class Remind:
    number: int
    """From 1, as the policy lists the reminders."""


@dataclass(frozen=True)
class Settle:
    """The round is over. A Settle from `fire_due` is the deadline's (time ran out)."""

    status: ActionStatus | None
    """The action's final status, or None: go ahead and execute."""
    closed_as: ClosedAs
    decided_by: tuple[str, ...] = ()
    note: str | None = None


Due = AddTier | Remind | Settle


@dataclass(frozen=True)
class Verdict:
    recorded: RecordedVote
    settle: Settle | None
    """Set when this vote ended the round."""


@dataclass(frozen=True)
class TierJoined:
    number: int
    joining: tuple[str, ...]
    """Approvers asked for the first time (those already asked are not asked again)."""
    approvers: tuple[str, ...]
    """Everyone who may now decide."""


class ApprovalRound:
    """One escalated request waiting for a quorum of authorised approvals.

    `pending` is what approvers and `approvals list` see; it changes as votes count, tiers
    join and the deadline moves, and is None once the round is settled."""

    def __init__(
        self, settings: EscalationSettings, pending: PendingApproval, started: datetime
    ) -> None:
        self.settings = settings
        self.started = started
        """When the request was escalated (the decision's time): timers count from here, and
        no vote may be signed before it."""
        self.votes: list[RecordedVote] = []
        self.settled: Settle | None = None
        self._pending = pending
        self._timers = sorted(
            [
                Timer(started + timedelta(seconds=after), TimerKind.REMINDER, index)
                for index, after in enumerate(settings.reminders_seconds)
            ]
            + [
                Timer(started + timedelta(seconds=tier.after_seconds), TimerKind.LADDER, index)
                for index, tier in enumerate(settings.ladder)
            ]
        )
        self._tiers_called: set[int] = set()

    @property
    def pending(self) -> PendingApproval | None:
        return self._pending if self.settled is None else None

    @property
    def card(self) -> ApprovalCard:
        """The request as every message shows it, the first one, a tier's, a reminder, the
        closing note: its current approvers and deadline (still readable once settled)."""
        return self._pending.card

    @property
    def approvers(self) -> tuple[str, ...]:
        return self._pending.card.approvers

    @property
    def approvals(self) -> tuple[str, ...]:
        return self._pending.approvals

    @property
    def denials(self) -> tuple[str, ...]:
        return self._pending.denials

    @property
    def deadline(self) -> datetime:
        return self._pending.card.deadline

    def refusal(self, approver: str) -> str | None:
        """Why `approver` may not decide this request (self-approval, not an approver, voted
        already under any spelling of their name), or None if they may."""
        return self._pending.refusal(approver)

    def judge(self, vote: Vote, unsigned: str | None, at: datetime) -> Verdict:
        """Record a vote and count it if it may count: `unsigned` is why its signature was
        refused (checked by the workflow against keys read through an activity), if it was."""
        refused = unsigned if unsigned is not None else self.refusal(vote.approver)
        recorded = RecordedVote(
            vote=vote,
            accepted=refused is None,
            reason=refused if refused is not None else ("approved" if vote.approve else "denied"),
            at=at,
        )
        self.votes.append(recorded)
        return Verdict(recorded, None if refused is not None else self._count(vote))

    def cancel(self, by: str, reason: str) -> Settle:
        return self._settle(Settle(ActionStatus.CANCELLED, "cancelled", (by,), reason))

    def next_wake(self) -> Timer:
        """The next moment something falls due: a reminder, a ladder tier or the deadline."""
        deadline = Timer(self.deadline, TimerKind.DEADLINE)
        return min(self._timers[0], deadline) if self._timers else deadline

    def fire_due(self, now: datetime) -> list[Due]:
        """What fell due by `now`, as an on-time run would have met it however late the wake:
        in order of due time, tiers whose time came, reminders due before the deadline then
        in force, and each deadline passed: one more tier (`on_timeout: escalate`, the
        deadline moving on) or the end, after which nothing more falls due."""
        due: list[Due] = []
        while self.settled is None and (wake := self.next_wake()).at <= now:
            if wake.kind is TimerKind.DEADLINE:
                due.append(self._on_deadline())
                continue
            self._timers.pop(0)
            if wake.kind is TimerKind.REMINDER:
                if wake.at < self.deadline:
                    due.append(Remind(wake.index + 1))
            elif wake.index not in self._tiers_called:  # unless time running out called it
                due.append(self._call_tier(wake.index, TierCause.SCHEDULED))
        return due

    def join_tier(self, call: AddTier, resolved: Sequence[str]) -> TierJoined:
        """Tier `call.index` joins with its approvers (roles and groups resolved); nobody
        already asked is asked again, however their name is written."""
        asked = {approver_key(name) for name in self.approvers}
        joining: list[str] = []
        for name in resolved:
            if approver_key(name) not in asked:
                asked.add(approver_key(name))
                joining.append(name)
        approvers = (*self.approvers, *joining)
        self._pending = self._pending.with_card(approvers=approvers)
        return TierJoined(call.index + 1, tuple(joining), approvers)

    def awaiting(self) -> tuple[str, ...]:
        """Who a reminder goes to: every approver asked who has not voted (either way: a
        deny that did not end the round is an answer too), each once."""
        answered = {approver_key(name) for name in (*self.approvals, *self.denials)}
        waiting_on: list[str] = []
        for name in self.approvers:
            if approver_key(name) not in answered:
                answered.add(approver_key(name))
                waiting_on.append(name)
        return tuple(waiting_on)

    def _count(self, vote: Vote) -> Settle | None:
        """An accepted vote: quorum approves; a deny rejects when it vetoes, or else once no
        quorum is left to reach and no tier is left to call."""
        quorum = self.settings.quorum
        if vote.approve:
            approvals = (*self.approvals, vote.approver)
            self._pending = self._pending.model_copy(update={"approvals": approvals})
            if len(approvals) >= quorum:
                return self._settle(Settle(None, "approved", approvals, vote.note))
            return None
        denials = (*self.denials, vote.approver)
        self._pending = self._pending.model_copy(update={"denials": denials})
        # Who could still approve: asked, not denied, and free of a conflict of interest.
        eligible = {
            approver_key(name)
            for name in self.approvers
            if self._pending.conflict_of_interest(name) is None
        }
        reachable = len(eligible - {approver_key(name) for name in denials})
        every_tier_called = len(self._tiers_called) == len(self.settings.ladder)
        if self.settings.deny_vetoes or (reachable < quorum and every_tier_called):
            return self._settle(Settle(ActionStatus.REJECTED, "rejected", denials, vote.note))
        return None

    def _on_deadline(self) -> Due:
        uncalled = [i for i in range(len(self.settings.ladder)) if i not in self._tiers_called]
        if self.settings.on_timeout == "escalate" and uncalled:
            moved = self.deadline + timedelta(seconds=self.settings.timeout_seconds)
            self._pending = self._pending.with_card(deadline=moved)
            return self._call_tier(uncalled[0], TierCause.TIMEOUT)
        if self.settings.on_timeout == "approve":
            return self._settle(Settle(None, "approved", (), "approved by timeout (policy)"))
        return self._settle(Settle(ActionStatus.TIMED_OUT, "timed_out"))

    def _call_tier(self, index: int, cause: TierCause) -> AddTier:
        self._tiers_called.add(index)
        return AddTier(index, cause)

    def _settle(self, settle: Settle) -> Settle:
        self.settled = settle
        return settle
