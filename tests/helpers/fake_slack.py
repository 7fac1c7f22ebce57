"""A stand-in for Slack on loopback: the Web API methods Proctor uses, with Slack's response
shapes and errors (429 + Retry-After, channel_not_found, token_revoked, ...), Block Kit limit
checks like Slack's `invalid_blocks`, and a user who clicks buttons by sending interactivity
payloads signed exactly as Slack signs them (HMAC-SHA256 over `v0:<timestamp>:<body>`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = {"id": "T0PROCTOR", "domain": "proctor-test"}


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Slack user id → {"email": ..., "name": ...}."""
    channels: set[str] = field(default_factory=lambda: {"C0APPROVALS"})
    usergroups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    """Group id → (handle, member user ids)."""
    messages: list[Message] = field(default_factory=list)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    token: str = BOT_TOKEN
    revoked: bool = False
    rate_limited: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Method → how many more calls get 429 (Retry-After: 1)."""
    down: bool = False
    """Every call answers 503 (and the client's retries see an outage)."""
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    """Socket Mode connections the app opened."""
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    def add_user(self, user_id: str, email: str) -> None:
        self.users[user_id] = {"email": email, "name": email.split("@")[0]}

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._dispatch)
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/api/"

    async def stop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- queries for tests ----------------------------------------------------------------

    def posted(self, *, thread: bool = False) -> list[Message]:
        return [m for m in self.messages if (m.thread_ts is not None) == thread]

    def message(self, channel: str, ts: str) -> Message:
        return next(m for m in self.messages if m.channel == channel and m.ts == ts)

    def dm_channel(self, user_id: str) -> str:
        return f"D{user_id}"

    # --- Socket Mode ----------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(heartbeat=5)
        await socket.prepare(request)
        await socket.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0PROCTOR"}}
        )
        self.sockets.append(socket)
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                ack = json.loads(message.data)
                future = self._acks.pop(str(ack.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(ack)
        return socket

    async def send_envelope(
        self, payload: dict[str, Any], kind: str = "interactive"
    ) -> dict[str, Any]:
        """Deliver an interaction over Socket Mode; returns the app's ack."""
        envelope_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        return await asyncio.wait_for(future, 10)

    # --- the Web API ----------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(method)
        if self.down:
            return web.Response(status=503, text="upstream connect error")
        if self.rate_limited[method] > 0:
            self.rate_limited[method] -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        auth = request.headers.get("Authorization", "")
        if method == "apps.connections.open":
            if auth != f"Bearer {APP_TOKEN}":
                return _error("invalid_auth")
            return web.json_response(
                {"ok": True, "url": self.url.replace("http://", "ws://").replace("/api/", "/link")}
            )
        if self.revoked:
            return _error("token_revoked")
        if auth != f"Bearer {self.token}":
            return _error("invalid_auth")
        args: dict[str, Any] = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        result: dict[str, Any] = handler(args)
        return web.json_response(result)

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://proctor-test.slack.com/",
            "team": "Proctor",
            "user": "proctor",
            "team_id": TEAM["id"],
            "user_id": "UBOT",
            "bot_id": "BBOT",
        }

    def _users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        for user_id, user in self.users.items():
            if user["email"] == args.get("email"):
                return {"ok": True, "user": self._user(user_id)}
        return {"ok": False, "error": "users_not_found"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user", "")
        if user_id not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user(user_id)}

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.users[user_id]
        return {
            "id": user_id,
            "team_id": TEAM["id"],
            "name": user["name"],
            "deleted": False,
            "is_bot": False,
            "profile": {"email": user["email"], "real_name": user["name"]},
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("users", ""))
        if user_id not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": self.dm_channel(user_id)}}

    def _known_channel(self, channel: str) -> bool:
        return channel in self.channels or (channel.startswith("D") and channel[1:] in self.users)

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if not self._known_channel(channel):
            return {"ok": False, "error": "channel_not_found"}
        problem = block_kit_problem(args)
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        self.messages.append(
            Message(channel, ts, str(args.get("text", "")), _blocks(args), args.get("thread_ts"))
        )
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"text": args.get("text"), "ts": ts},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        found = [m for m in self.messages if m.channel == channel and m.ts == ts]
        if not found:
            return {"ok": False, "error": "message_not_found"}
        problem = block_kit_problem(args)
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        found[0].text = str(args.get("text", ""))
        found[0].blocks = _blocks(args)
        found[0].updates += 1
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self._known_channel(str(args.get("channel", ""))):
            return {"ok": False, "error": "channel_not_found"}
        self.ephemeral.append(args)
        return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not args.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("title", {}).get("text", "")) > 24:
            return {"ok": False, "error": "invalid_arguments"}
        opened = {**view, "id": f"V{len(self.views) + 1:04d}", "trigger_id": args["trigger_id"]}
        self.views.append(opened)
        return {"ok": True, "view": opened}

    def _usergroups_list(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "usergroups": [
                {"id": gid, "handle": handle, "name": handle}
                for gid, (handle, _) in self.usergroups.items()
            ],
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group[1])}


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    value = args.get("blocks") or []
    parsed: list[dict[str, Any]] = json.loads(value) if isinstance(value, str) else value
    return parsed


def block_kit_problem(args: dict[str, Any]) -> str | None:
    """The limits Slack enforces on a message (documented Block Kit limits)."""
    blocks = _blocks(args)
    if len(blocks) > 50:
        return "more than 50 blocks"
    if len(str(args.get("text", ""))) > 40000:
        return "text longer than 40000"
    for block in blocks:
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > 150:
            return "header text longer than 150"
        if kind == "section":
            if "text" in block and len(block["text"]["text"]) > 3000:
                return "section text longer than 3000"
            fields = block.get("fields", [])
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                return "section fields over the limits"
        if kind == "context" and (
            len(block["elements"]) > 10
            or any(len(e.get("text", "")) > 3000 for e in block["elements"])
        ):
            return "context over the limits"
        if kind == "actions":
            for element in block["elements"]:
                if len(element.get("value", "")) > 2000 or len(element["text"]["text"]) > 75:
                    return "button over the limits"
                if len(element.get("action_id", "")) > 255:
                    return "action_id longer than 255"
    return None


# --- a person in Slack ------------------------------------------------------------------------


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


async def send_interaction(
    url: str,
    payload: dict[str, Any],
    *,
    timestamp: str | None = None,
    signature: str | None = None,
    secret: str = SIGNING_SECRET,
) -> aiohttp.ClientResponse:
    """POST an interactivity payload the way Slack does: form-encoded `payload=<json>`."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature if signature is not None else sign(body, timestamp, secret),
    }
    return await post_raw(url, body, headers)


async def post_raw(url: str, body: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        await response.read()
        return response


_trigger = itertools.count(1)


def click(user_id: str, message: Message, action_id: str) -> dict[str, Any]:
    """The block_actions payload Slack sends when `user_id` clicks a button in `message`."""
    button = next(
        e
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "team": TEAM,
        "api_app_id": "A0PROCTOR",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM["id"]},
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{next(_trigger)}.{int(time.time())}.fake",
        "channel": {"id": message.channel, "name": message.channel.lower()},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "response_url": "http://127.0.0.1:9/response",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "proctor.vote",
                "type": "button",
                "value": button["value"],
                "text": button["text"],
                "action_ts": now,
            }
        ],
    }


def submit(user_id: str, view: dict[str, Any], note: str | None) -> dict[str, Any]:
    """The view_submission payload for a modal this user filled in."""
    return {
        "type": "view_submission",
        "team": TEAM,
        "api_app_id": "A0PROCTOR",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM["id"]},
        "trigger_id": f"{next(_trigger)}.{int(time.time())}.fake",
        "view": {
            **view,
            "state": {
                "values": {
                    "proctor.note": {
                        "proctor.note_input": {"type": "plain_text_input", "value": note}
                    }
                }
            },
            "hash": "1.abc",
        },
        "response_urls": [],
    }


class SlackInThread:
    """The stand-in on its own event loop thread, for tests that drive subprocesses."""

    def __init__(self, slack: FakeSlack) -> None:
        import asyncio
        import threading

        self.slack = slack
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        import asyncio

        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.slack.start(), self.loop).result(10)
        return self.slack

    def __exit__(self, *_: object) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.slack.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
