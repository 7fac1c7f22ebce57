"""What the workflows ask the chat surface to send, and what it reports back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from proctor.models.approval import ApprovalCard
from proctor.models.base import Frozen


class SlackMessageRef(Frozen):
    """One Slack message about a request (to update when it is decided)."""

    channel: str
    ts: str
    approver: str | None = None
    """The approver it was sent to directly; None for a channel post."""


class ApprovalNotice(Frozen):
    """Ask approvers: a channel post and/or a DM to each of `recipients`."""

    card: ApprovalCard
    recipients: tuple[str, ...]
    channel: str | None = None
    direct_messages: bool = True
    tier: int = 0
    """0: the first request; N: ladder tier N joined (the earlier messages get a note)."""
    earlier: tuple[SlackMessageRef, ...] = ()


class ReminderNotice(Frozen):
    card: ApprovalCard
    pending: tuple[str, ...]
    number: int
    messages: tuple[SlackMessageRef, ...] = ()


class NotifyResult(Frozen):
    messages: tuple[SlackMessageRef, ...] = ()
    undelivered: tuple[str, ...] = ()
    """Recipients that couldn't be reached (no Slack account found, channel missing, ...),
    each with the reason: `alice@example.com: users_not_found`."""
    skipped: str | None = None
    """Why nothing was sent at all (Slack not configured)."""


ClosedAs = Literal["approved", "rejected", "timed_out", "cancelled"]


class ApprovalClosed(Frozen):
    """The request is decided: every message about it shows the outcome, without buttons."""

    card: ApprovalCard
    messages: tuple[SlackMessageRef, ...]
    status: ClosedAs
    decided_by: tuple[str, ...] = ()
    note: str | None = None
    at: datetime


class ApproverNames(Frozen):
    names: tuple[str, ...]


class ResolvedApprovers(Frozen):
    approvers: tuple[str, ...]
    unresolved: tuple[str, ...] = ()
    """References that matched nobody (`role:x: no approver holds it`)."""
