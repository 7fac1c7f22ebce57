"""Approval notifications: resolve who may approve, ask them on Slack, remind, close.

Without a Slack token these do nothing and say so (the CLI still decides). A retried `notify`
resumes from its heartbeat: messages an earlier attempt posted are not posted twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from proctor.approvals.directory import ApproverDirectory
from proctor.approvals.slack import SlackNotifier, SlackUnusable
from proctor.contract import (
    CLOSE_APPROVAL_MESSAGES,
    NOTIFY_APPROVERS,
    REMIND_APPROVERS,
    RESOLVE_APPROVERS,
)
from proctor.models import (
    ApprovalClosed,
    ApprovalNotice,
    ApproverNames,
    NotifyResult,
    ReminderNotice,
    ResolvedApprovers,
    SlackMessageRef,
)

T = TypeVar("T")
NOT_CONFIGURED = "Slack is not configured (set PROCTOR_SLACK_BOT_TOKEN)"


class SlackActivities:
    def __init__(
        self, notifier: SlackNotifier | None, directory: Callable[[], ApproverDirectory]
    ) -> None:
        self.notifier = notifier
        self.directory = directory

    @activity.defn(name=RESOLVE_APPROVERS)
    async def resolve_approvers(self, names: ApproverNames) -> ResolvedApprovers:
        """`role:` from the directory, `slack-group:` from Slack; identities stay as named."""
        resolved, empty = self.directory().resolve_roles(names.names)
        approvers: list[str] = []
        unresolved = [f"{name}: no approver in the directory holds this role" for name in empty]
        for name in resolved:
            if not name.startswith("slack-group:"):
                approvers.append(name)
                continue
            if self.notifier is None:
                unresolved.append(f"{name}: {NOT_CONFIGURED}")
                continue
            members = await self._guard(
                self.notifier.group_members(name.removeprefix("slack-group:"))
            )
            if not members:
                unresolved.append(f"{name}: no such Slack user group, or no member found")
            approvers.extend(members or ())
        return ResolvedApprovers(
            approvers=tuple(dict.fromkeys(approvers)), unresolved=tuple(unresolved)
        )

    @activity.defn(name=NOTIFY_APPROVERS)
    async def notify_approvers(self, notice: ApprovalNotice) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(skipped=NOT_CONFIGURED)
        details = activity.info().heartbeat_details
        posted = [SlackMessageRef.model_validate(m) for m in details[0]] if details else []
        return await self._guard(
            self.notifier.ask(
                notice,
                posted,
                progress=lambda done: activity.heartbeat([m.model_dump() for m in done]),
            )
        )

    @activity.defn(name=REMIND_APPROVERS)
    async def remind_approvers(self, notice: ReminderNotice) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(skipped=NOT_CONFIGURED)
        return await self._guard(self.notifier.remind(notice))

    @activity.defn(name=CLOSE_APPROVAL_MESSAGES)
    async def close_approval_messages(self, closed: ApprovalClosed) -> NotifyResult:
        if self.notifier is None or not closed.messages:
            return NotifyResult(skipped=None if self.notifier else NOT_CONFIGURED)
        return await self._guard(self.notifier.close(closed))

    @staticmethod
    async def _guard(work: Awaitable[T]) -> T:
        try:
            return await work
        except SlackUnusable as exc:
            raise ApplicationError(str(exc), type="SlackUnusable", non_retryable=True) from exc
