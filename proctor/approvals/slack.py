"""The Slack side of approvals over slack-sdk's AsyncWebClient: ask, remind, close, and map
Slack users to approver identities.

Errors are sorted into three kinds, because they call for different answers:
- one recipient unreachable (no Slack account, channel gone): skip it, report it, go on;
- Slack unusable (token revoked, bad auth, missing scope): `SlackUnusable`, not worth retrying;
- anything else (rate limits beyond what the client's own retries absorb, outages): raised as
  is, for the activity's retry policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from proctor.approvals import blocks
from proctor.approvals.directory import ApproverDirectory
from proctor.errors import UnavailableError
from proctor.models import (
    ApprovalClosed,
    ApprovalNotice,
    NotifyResult,
    ReminderNotice,
    SlackMessageRef,
)

log = logging.getLogger(__name__)

UNUSABLE = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "no_permission",
        "org_login_required",
        "team_access_not_granted",
        "ekm_access_denied",
    }
)
"""Errors no retry will cure: an operator must act (new token, scopes)."""
RECIPIENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "users_not_found",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "restricted_action",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "no_text",
        "invalid_blocks",
    }
)
"""Errors about one target: the other recipients still get their message."""


class SlackUnusable(UnavailableError):
    """Slack refuses this app outright (revoked token, missing scope): retrying won't help."""


def slack_client(token: str, *, base_url: str | None = None) -> AsyncWebClient:
    """A Web API client that waits out 429s (honouring Retry-After), 5xx and dropped
    connections a few times before giving the error to the caller."""
    return AsyncWebClient(
        token=token,
        base_url=base_url or AsyncWebClient.BASE_URL,
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def _code(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else None
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "unknown_error"


def classify(exc: SlackApiError) -> str:
    """Re-raise as SlackUnusable when no retry can help; return the code if it concerns one
    recipient; re-raise anything else (transient) unchanged."""
    code = _code(exc)
    if code in UNUSABLE:
        raise SlackUnusable(f"Slack refused the app: {code}") from exc
    if code in RECIPIENT_ERRORS:
        return code
    raise exc


Redact = Callable[[dict[str, Any]], dict[str, Any]]


class SlackNotifier:
    def __init__(
        self,
        client: AsyncWebClient,
        directory: Callable[[], ApproverDirectory],
        redact: Redact,
        *,
        default_channel: str | None = None,
    ) -> None:
        self.client = client
        self.directory = directory
        self.redact = redact
        self.default_channel = default_channel
        self._user_ids: dict[str, str | None] = {}

    # --- identities -----------------------------------------------------------------------

    async def user_id_for(self, identity: str) -> str | None:
        """The Slack user of an approver: from the directory, else looked up by email."""
        known = self.directory().slack_user_of(identity)
        if known is not None:
            return known
        if identity in self._user_ids:
            return self._user_ids[identity]
        email = self.directory().email_of(identity)
        if email is None:
            return None
        try:
            found = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            classify(exc)
            self._user_ids[identity] = None
            return None
        user_id = str(found["user"]["id"])
        self._user_ids[identity] = user_id
        return user_id

    async def identity_of(self, user_id: str) -> str | None:
        """The approver identity behind a Slack user: directory first, then profile email."""
        directory = self.directory()
        known = directory.identity_of_slack_user(user_id)
        if known is not None:
            return known
        try:
            info = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            classify(exc)
            return None
        user = info["user"]
        if user.get("deleted") or user.get("is_bot"):
            return None
        email = (user.get("profile") or {}).get("email")
        return directory.identity_of_email(str(email)) if email else None

    async def group_members(self, handle: str) -> tuple[str, ...] | None:
        """Identities in a Slack user group (by handle or id); None if there is no such group."""
        listed = await self.client.usergroups_list()
        groups: list[dict[str, Any]] = listed.get("usergroups", [])
        match = next((g for g in groups if handle in (g.get("handle"), g.get("id"))), None)
        if match is None:
            return None
        members = await self.client.usergroups_users_list(usergroup=match["id"])
        user_ids: list[str] = members.get("users", [])
        identities = [await self.identity_of(str(u)) for u in user_ids]
        return tuple(i for i in identities if i is not None)

    # --- messages -------------------------------------------------------------------------

    async def ask(
        self,
        notice: ApprovalNotice,
        posted: Iterable[SlackMessageRef] = (),
        progress: Callable[[list[SlackMessageRef]], None] | None = None,
    ) -> NotifyResult:
        """Post the request to its channel and DM each recipient. `posted`: messages sent by an
        earlier attempt of the same notice (skipped, so a retry posts nothing twice);
        `progress` hears of each message as it is posted (the activity heartbeats them)."""
        done = _Progress(posted, progress)
        undelivered: list[str] = []
        params = self.redact(notice.card.params)
        note = None
        if notice.tier:
            note = f"Escalated to tier {notice.tier}: you have been added as an approver."
        message = blocks.approval_request(notice.card, params, note=note)
        channel = notice.channel or self.default_channel
        if channel and notice.tier == 0 and not any(m.approver is None for m in done):
            await self._post(channel, message, None, done, undelivered)
        for earlier in notice.earlier:
            if notice.tier:
                await self._reply(
                    earlier,
                    blocks.tier_joined(notice.card, notice.tier, notice.recipients),
                    undelivered,
                )
        if notice.direct_messages:
            for identity in notice.recipients:
                if any(m.approver == identity for m in done):
                    continue
                await self._direct(identity, message, done, undelivered)
        return NotifyResult(messages=tuple(done), undelivered=tuple(undelivered))

    async def remind(self, notice: ReminderNotice) -> NotifyResult:
        """A thread reply under each earlier message of a pending approver (or the channel)."""
        undelivered: list[str] = []
        message = blocks.reminder(notice.card, notice.pending, notice.number)
        pending = set(notice.pending)
        for ref in notice.messages:
            if ref.approver is None or ref.approver in pending:
                await self._reply(ref, message, undelivered)
        return NotifyResult(undelivered=tuple(undelivered))

    async def close(self, closed: ApprovalClosed) -> NotifyResult:
        """Every message about the request shows the outcome; the buttons go."""
        message = blocks.approval_closed(closed, self.redact(closed.card.params))
        undelivered: list[str] = []
        for ref in closed.messages:
            try:
                await self.client.chat_update(channel=ref.channel, ts=ref.ts, **message)
            except SlackApiError as exc:
                undelivered.append(f"{ref.channel}/{ref.ts}: {classify(exc)}")
        return NotifyResult(messages=closed.messages, undelivered=tuple(undelivered))

    async def _post(
        self,
        channel: str,
        message: dict[str, Any],
        approver: str | None,
        done: list[SlackMessageRef],
        undelivered: list[str],
    ) -> None:
        try:
            sent = await self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            undelivered.append(f"{approver or channel}: {classify(exc)}")
            return
        done.append(
            SlackMessageRef(channel=str(sent["channel"]), ts=str(sent["ts"]), approver=approver)
        )

    async def _direct(
        self,
        identity: str,
        message: dict[str, Any],
        done: list[SlackMessageRef],
        undelivered: list[str],
    ) -> None:
        user_id = await self.user_id_for(identity)
        if user_id is None:
            undelivered.append(f"{identity}: no Slack user found")
            return
        try:
            opened = await self.client.conversations_open(users=user_id)
        except SlackApiError as exc:
            undelivered.append(f"{identity}: {classify(exc)}")
            return
        await self._post(str(opened["channel"]["id"]), message, identity, done, undelivered)

    async def _reply(
        self, ref: SlackMessageRef, message: dict[str, Any], undelivered: list[str]
    ) -> None:
        try:
            await self.client.chat_postMessage(channel=ref.channel, thread_ts=ref.ts, **message)
        except SlackApiError as exc:
            undelivered.append(f"{ref.approver or ref.channel}: {classify(exc)}")


class _Progress(list[SlackMessageRef]):
    """The messages posted so far, reported as each one lands."""

    def __init__(
        self,
        posted: Iterable[SlackMessageRef],
        listener: Callable[[list[SlackMessageRef]], None] | None,
    ) -> None:
        super().__init__(posted)
        self.listener = listener

    def append(self, ref: SlackMessageRef) -> None:
        super().append(ref)
        if self.listener is not None:
            self.listener(list(self))
