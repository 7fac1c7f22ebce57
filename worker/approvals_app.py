"""The approvals app: Slack's interactivity endpoint, over HTTP or Socket Mode, on Bolt.

HTTP requests pass slack-sdk's signature verifier before anything reads them (bad, missing or
stale signatures get 401 and an audit row; no handler runs), then a check of their shape: a
signed body that is not an interaction we handle gets 400 and an audit row, so Bolt and the
listeners only see the shapes Slack sends (worker/slack_requests.py). Every interaction, either
way in, is deduplicated in Postgres by its trigger id, so a replayed or retried payload votes once.
Handlers ack at once (Slack wants an answer within 3 s) and do their work afterwards.

The signature is verified once, here, and Bolt's own verification is off
(`request_verification_enabled=False`). Both use the same slack-sdk `SignatureVerifier`, but
only this one runs before anything parses the body (Bolt parses it while building its request,
before its middleware verifies), names why a request was refused, audits and counts it, and
keeps out the values that make the verifier raise. Socket Mode needs no signature: Slack's
websocket, opened with the app token, is the authentication.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from proctor.approvals import blocks
from proctor.approvals.blocks import ButtonValue, ModalContext
from proctor.approvals.desk import VoteDesk, VoteResult
from proctor.approvals.keys import (
    VoteKeyDirectory,
    VoteKeyError,
    VoteSigner,
    load_or_create_channel_key,
)
from proctor.approvals.slack import SlackNotifier
from proctor.client import Client
from proctor.metrics import SLACK_REFUSED
from proctor.models import AuditEvent, GrantScope, PendingApproval
from proctor.settings import (
    NotConfigured,
    ProctorSettings,
    approval_key_dir,
    check_slack_secrets,
)
from proctor.stores.audit_log import AuditLog
from proctor.stores.slack_interactions import SlackInteractionStore
from proctor_server.worker.observability import metrics_endpoint, web_served
from proctor_server.worker.slack_requests import (
    bolt_headers,
    interaction_problem,
    printable,
    refusal_reason,
)

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


class ApprovalsApp:
    """Bolt listeners for the approval buttons and modals, plus the HTTP front."""

    def __init__(
        self,
        *,
        notifier: SlackNotifier,
        desk: VoteDesk,
        pool: asyncpg.Pool,
        audit: AuditLog,
        signing_secret: str | None,
    ) -> None:
        self.notifier = notifier
        self.desk = desk
        self.interactions = SlackInteractionStore(pool)
        self.audit = audit
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.bolt = AsyncApp(
            client=notifier.client,
            request_verification_enabled=False,  # verified in handle_http: see the docstring
            ignoring_self_events_enabled=False,
        )
        self.bolt.middleware(self._once)
        self.bolt.action(blocks.APPROVE)(self._approve)
        self.bolt.action(blocks.APPROVE_FOR_A_WHILE)(self._approve_for_a_while)
        self.bolt.action(blocks.APPROVE_WITH_NOTE)(self._open_modal)
        self.bolt.action(blocks.DENY)(self._open_modal)
        self.bolt.view(blocks.DENY_MODAL)(self._submitted)
        self.bolt.view(blocks.APPROVE_MODAL)(self._submitted)

    # --- HTTP -----------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1_000_000)
        app.router.add_post(EVENTS_PATH, self.handle_http)
        app.router.add_get("/healthz", _healthy)
        app.router.add_get("/metrics", metrics_endpoint)
        return app

    async def handle_http(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.verifier is None:
            return web.json_response({"error": "no signing secret configured"}, status=503)
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        reason = refusal_reason(self.verifier, body, timestamp, signature)
        if reason is not None:
            await self._audit_refusal(reason, body, timestamp, request.remote)
            return web.json_response({"error": "invalid request signature"}, status=401)
        headers = dict(request.headers)
        problem = interaction_problem(body, headers)
        if problem is not None:
            await self._audit_refusal(problem, body, timestamp, request.remote)
            return web.json_response({"error": "not an interaction Proctor handles"}, status=400)
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8"), query=request.query_string, headers=bolt_headers(headers)
        )
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def _audit_refusal(
        self, reason: str, body: bytes, timestamp: str | None, remote: str | None
    ) -> None:
        """Refused requests are evidence too; the body is kept only as its digest, the
        attacker-controlled timestamp as bounded, escaped ASCII."""
        digest = hashlib.sha256(body).hexdigest()
        stamp = printable(timestamp)
        log.warning("refused a request to %s from %s: %s", EVENTS_PATH, remote, reason)
        SLACK_REFUSED.inc()
        try:
            await self.audit.append(
                AuditEvent(
                    idempotency_key=f"slack-refused:{digest}:{stamp or '-'}:{reason}",
                    event_type="slack_request_refused",
                    actor="slack-interactivity",
                    payload={
                        "reason": reason,
                        "body_sha256": digest,
                        "timestamp": stamp,
                        "remote": remote or "",
                    },
                )
            )
        except Exception:  # the 401 stands whether or not the row could be written
            log.exception("could not audit a refused Slack request")

    # --- once-only ------------------------------------------------------------------------

    async def _once(self, body: dict[str, Any], next: Any) -> BoltResponse | None:
        """Each interaction is handled once across replicas: replays and retries are acked
        and dropped."""
        key = interaction_key(body)
        if not await self.interactions.claim(key, str(body.get("type", ""))):
            log.info("dropped a repeated Slack interaction %s", key)
            return BoltResponse(status=200, body="")
        await next()
        return None

    # --- listeners ------------------------------------------------------------------------

    async def _approve(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        value = _button(body)
        if value is None:
            return
        async with self._answering(body, _channel_of(body)):
            await self._approve_as_clicked(body, value)

    async def _approve_for_a_while(self, ack: Any, body: dict[str, Any]) -> None:
        """ "Approve for 1 h": an approval signed with a standing grant under the waiting
        card's rule (the card read from the workflow, never from the button), for an hour or
        the rule's maximum if shorter."""
        await ack()
        value = _button(body)
        if value is None:
            return
        async with self._answering(body, _channel_of(body)):
            grant = _button_grant(await self.desk.waiting(value.w))
            if isinstance(grant, str):
                await self._tell(body, _channel_of(body), VoteResult(False, grant))
                return
            await self._approve_as_clicked(body, value, grant)

    async def _approve_as_clicked(
        self, body: dict[str, Any], value: ButtonValue, grant: GrantScope | None = None
    ) -> None:
        """The clicker's approval, signed by the app's channel key (with `grant`, if given),
        and the answer shown to them."""
        approver = await self._approver(body)
        result = await self.desk.cast(
            value.w,
            approver,
            approve=True,
            note=None,
            digest=value.d,
            channel="slack",
            interaction=interaction_key(body),
            grant=grant,
        )
        await self._tell(body, _channel_of(body), result)

    @asynccontextmanager
    async def _answering(self, body: dict[str, Any], channel: str | None) -> AsyncIterator[None]:
        """If recording a vote fails (Temporal or Postgres unreachable), say so to the clicker
        and forget the interaction, so that clicking again is not taken for a replay."""
        try:
            yield
        except Exception as exc:
            log.exception("could not record a Slack vote")
            await self.interactions.forget(interaction_key(body))
            await self._tell(
                body,
                channel,
                VoteResult(
                    False,
                    f"Proctor could not record your vote ({type(exc).__name__}); try "
                    "again, or use `proctor approve` / `proctor deny`",
                ),
            )

    async def _open_modal(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        value = _button(body)
        if value is None:
            return
        action_id = body["actions"][0]["action_id"]
        approve = action_id == blocks.APPROVE_WITH_NOTE
        async with self._answering(body, _channel_of(body)):
            approver = await self._approver(body)
            refused = await self.desk.check(
                value.w,
                approver,
                value.d,
                channel="slack",
                interaction=interaction_key(body),
                approve=approve,
            )
            if refused is not None:
                await self._tell(body, _channel_of(body), refused)
                return
            pending = await self.desk.waiting(value.w)
            summary = (
                f"{pending.card.agent_id} wants {pending.card.action}: {pending.card.reason}"
                if not isinstance(pending, str)
                else value.w
            )
            modal = blocks.vote_modal(
                blocks.APPROVE_MODAL if approve else blocks.DENY_MODAL,
                ModalContext(button=value, channel=_channel_of(body)),
                summary,
            )
            await self.notifier.client.views_open(trigger_id=body["trigger_id"], view=modal)

    async def _submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        deny = view.get("callback_id") == blocks.DENY_MODAL
        note = (
            ((view.get("state") or {}).get("values") or {})
            .get(blocks.NOTE_BLOCK, {})
            .get(blocks.NOTE_INPUT, {})
            .get("value")
            or ""
        ).strip() or None
        if deny and note is None:
            await ack(
                response_action="errors",
                errors={blocks.NOTE_BLOCK: "Say why: the agent and the audit log see it."},
            )
            return
        await ack()
        context = ModalContext.decode(str(view.get("private_metadata") or ""))
        if context is None:
            return
        value, channel = context.button, context.channel
        async with self._answering(body, channel):
            approver = await self._approver(body)
            result = await self.desk.cast(
                value.w,
                approver,
                approve=not deny,
                note=note,
                digest=value.d,
                channel="slack",
                interaction=interaction_key(body),
            )
            await self._tell(body, channel, result)

    async def _approver(self, body: dict[str, Any]) -> str | None:
        user_id = str((body.get("user") or {}).get("id", ""))
        return await self.notifier.identity_of(user_id) if user_id else None

    async def _tell(self, body: dict[str, Any], channel: str | None, result: VoteResult) -> None:
        """An ephemeral answer to the person who clicked (seen by nobody else)."""
        user_id = (body.get("user") or {}).get("id")
        if not channel or not user_id:
            return
        try:
            await self.notifier.client.chat_postEphemeral(
                channel=channel, user=user_id, text=blocks.escape(result.message)
            )
        except SlackApiError as exc:
            log.warning("could not answer %s: %s", user_id, exc.response.get("error"))


def interaction_key(body: dict[str, Any]) -> str:
    """Slack gives each interaction a trigger id; failing that, the payload's digest."""
    trigger = body.get("trigger_id")
    if trigger:
        return f"{body.get('type', '')}:{trigger}"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return f"{body.get('type', '')}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def _button(body: dict[str, Any]) -> ButtonValue | None:
    actions = body.get("actions") or []
    return ButtonValue.decode(str(actions[0].get("value", ""))) if actions else None


def _button_grant(pending: PendingApproval | str) -> GrantScope | str:
    """The grant "Approve for …" asks for on this waiting request, or why there is none."""
    if isinstance(pending, str):
        return pending
    seconds = blocks.button_grant_seconds(pending.card)
    if seconds is None:
        return "this request's rule allows no standing grants"
    return GrantScope(rule_id=pending.card.rule_id, duration_seconds=seconds)


def _channel_of(body: dict[str, Any]) -> str | None:
    channel = (body.get("channel") or {}).get("id")
    return str(channel) if channel else None


async def _healthy(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@asynccontextmanager
async def serving(
    app: ApprovalsApp, *, host: str, port: int, app_token: str | None = None
) -> AsyncIterator[str]:
    """Serve `app` until the block exits: over Socket Mode with an app token, else over HTTP
    at host:port. Yields where it listens."""
    await app.interactions.forget_older_than()
    if app_token:
        handler = AsyncSocketModeHandler(app.bolt, app_token, web_client=app.notifier.client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("approvals app connected to Slack over Socket Mode")
        try:
            yield "socket-mode"
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
        return
    async with web_served(app.web_app(), host, port) as bound:
        address = f"http://{host}:{bound}{EVENTS_PATH}"
        log.info("approvals app listening on %s", address)
        yield address


def approvals_enabled(settings: ProctorSettings) -> bool:
    """A bot token, plus a signing secret (HTTP) or an app token (Socket Mode). A secret set
    blank raises NotConfigured naming it: the app refuses to start rather than half-work."""
    check_slack_secrets(settings)
    return settings.slack_bot_token is not None and (
        settings.slack_signing_secret is not None or settings.slack_app_token is not None
    )


def build_approvals_app(
    settings: ProctorSettings,
    pool: asyncpg.Pool,
    audit: AuditLog,
    notifier: SlackNotifier,
    proctor: Client,
) -> ApprovalsApp:
    """The app signs the votes of the humans Slack authenticated with its channel key (made,
    with its trusted public half, on first start)."""
    secret = settings.slack_signing_secret
    return ApprovalsApp(
        notifier=notifier,
        desk=VoteDesk(proctor, audit, slack_vote_key(settings)),
        pool=pool,
        audit=audit,
        signing_secret=secret.get_secret_value() if secret else None,
    )


SLACK_CHANNEL = "slack"
"""The channel name the Slack app's votes carry, and its key's name in the key directory."""


def slack_vote_key(settings: ProctorSettings) -> VoteSigner:
    directory = VoteKeyDirectory(approval_key_dir(settings))
    path = settings.channel_key or directory.root / "channels" / f"{SLACK_CHANNEL}.key"
    try:
        return load_or_create_channel_key(path, directory, SLACK_CHANNEL)
    except (VoteKeyError, OSError) as exc:
        raise NotConfigured(f"the Slack app's vote key: {exc}") from exc


@asynccontextmanager
async def approvals_running(settings: ProctorSettings, app: ApprovalsApp) -> AsyncIterator[str]:
    token = settings.slack_app_token
    async with serving(
        app,
        host=settings.approvals_host,
        port=settings.approvals_port,
        app_token=token.get_secret_value() if token else None,
    ) as where:
        yield where
