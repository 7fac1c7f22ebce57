"""The approvals app's HTTP front, from the attacker's side: whatever a request carries, the
answer is 401 (not Slack's) or 400 (Slack's, but not an interaction we handle), with an audit
row and no handler run, never a 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from slack_sdk.signature import SignatureVerifier
from temporalio.testing import WorkflowEnvironment

from proctor.approvals import blocks
from proctor.approvals.desk import VoteDesk
from proctor.approvals.keys import VoteSigner
from proctor.client import Client
from proctor.stores.audit_log import AuditLog
from proctor_server.worker.approvals_app import ApprovalsApp, interaction_key, serving
from proctor_server.worker.approvals_app import log as approvals_log
from proctor_server.worker.slack_requests import refusal_reason
from tests.helpers.fake_slack import SIGNING_SECRET, FakeSlack, sign
from tests.helpers.harness import eventually
from tests.helpers.slack import fake_slack, slack_notifier

VERIFIER = SignatureVerifier(SIGNING_SECRET)
BODY = b"payload=%7B%7D"


def test_a_request_signed_like_slack_passes() -> None:
    now = str(int(time.time()))
    assert refusal_reason(VERIFIER, BODY, now, sign(BODY, now)) is None


def test_each_kind_of_bad_request_is_named() -> None:
    now = str(int(time.time()))
    old = str(int(time.time()) - 301)
    assert refusal_reason(VERIFIER, BODY, None, None) == "missing signature or timestamp"
    assert refusal_reason(VERIFIER, BODY, now, "") == "missing signature or timestamp"
    assert refusal_reason(VERIFIER, BODY, "12abc", sign(BODY, "12abc")) == ("non-numeric timestamp")
    assert refusal_reason(VERIFIER, BODY, old, sign(BODY, old)) == (
        "timestamp older than 5 minutes"
    )
    assert refusal_reason(VERIFIER, BODY + b"x", now, sign(BODY, now)) == "bad signature"
    assert refusal_reason(VERIFIER, BODY, now, sign(BODY, now, "another-secret")) == (
        "bad signature"
    )


def test_interactions_are_keyed_by_trigger_id_else_by_content() -> None:
    assert interaction_key({"type": "block_actions", "trigger_id": "1.2.3"}) == (
        "block_actions:1.2.3"
    )
    assert interaction_key({"type": "x", "a": 1}) == interaction_key({"a": 1, "type": "x"})
    assert interaction_key({"type": "x", "a": 1}) != interaction_key({"type": "x", "a": 2})


# --- over HTTP, against Postgres and the Slack stand-in ------------------------------------


@dataclass
class Front:
    host: str
    port: int
    slack: FakeSlack
    audit: AuditLog


@pytest.fixture
async def front(dev_server: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[Front]:
    """The approvals app on a loopback port; nothing here ever reaches a workflow."""
    audit = AuditLog(pool)
    async with fake_slack() as slack:
        proctor = Client(dev_server.client, task_queue=f"front-{uuid.uuid4().hex[:8]}")
        desk = VoteDesk(proctor, audit, VoteSigner.generate(channel="slack"))
        app = ApprovalsApp(
            notifier=slack_notifier(slack),
            desk=desk,
            pool=pool,
            audit=audit,
            signing_secret=SIGNING_SECRET,
        )
        async with serving(app, host="127.0.0.1", port=0) as url:
            port = int(urllib.parse.urlsplit(url).port or 0)
            yield Front("127.0.0.1", port, slack, audit)


async def post(front: Front, body: bytes, headers: dict[bytes, bytes]) -> int:
    """One HTTP/1.1 POST written byte for byte (header values an HTTP client would refuse
    to send, such as raw non-ASCII, go out as they are); the response's status."""
    reader, writer = await asyncio.open_connection(front.host, front.port)
    head = b"".join(k + b": " + v + b"\r\n" for k, v in headers.items())
    writer.write(
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + head + b"\r\n" + body
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    return int(response.split(b" ", 2)[1])


def raw_sign(body: bytes, timestamp: bytes, secret: str = SIGNING_SECRET) -> bytes:
    """Slack's signature, over the timestamp's bytes exactly as sent."""
    base = b"v0:" + timestamp + b":" + body
    return b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()


FORM = b"application/x-www-form-urlencoded"


def form(payload: object) -> bytes:
    """A unique interactivity body (its digest finds its audit row)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urllib.parse.urlencode({"payload": text, "nonce": uuid.uuid4().hex}).encode()


async def refusals_of(front: Front, body: bytes) -> list[dict[str, str]]:
    digest = hashlib.sha256(body).hexdigest()
    rows = await front.audit.recent_of_type("slack_request_refused", 200)
    return [p for p in (json.loads(r.payload) for r in rows) if p["body_sha256"] == digest]


NOW = object()


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        ("²".encode(), None, "non-numeric timestamp"),  # str.isdigit() says yes, int() says no
        (("\u0661\u0667" + "\u0660" * 8).encode(), None, "non-numeric timestamp"),  # Arabic
        (b"\xb2", None, "non-numeric timestamp"),  # not UTF-8 at all
        (b"", None, "missing signature or timestamp"),
        (b"9" * 5000, None, "timestamp out of range"),  # more digits than int() will read
        (b"9" * 400, None, "timestamp out of range"),  # an int too large for a float
        (b"-1700000000", None, "non-numeric timestamp"),
        (b"+" + str(int(time.time())).encode(), None, "non-numeric timestamp"),
        (NOW, "v0=²".encode(), "bad signature"),  # hmac.compare_digest refuses non-ASCII str
        (NOW, b"v0=\xff\xfe", "bad signature"),
        (NOW, b"v0=" + b"0" * 5000, "bad signature"),
    ],
)
async def test_odd_timestamps_and_signatures_get_401_and_an_audit_row(
    front: Front, timestamp: bytes | object, signature: bytes | None, reason: str
) -> None:
    stamp = str(int(time.time())).encode() if timestamp is NOW else timestamp
    assert isinstance(stamp, bytes)
    body = form({"type": "block_actions"})
    headers = {
        b"Content-Type": FORM,
        b"X-Slack-Request-Timestamp": stamp,
        b"X-Slack-Signature": signature or raw_sign(body, stamp),
    }

    assert await post(front, body, headers) == 401
    [row] = await refusals_of(front, body)
    assert row["reason"] == reason
    assert row["timestamp"].isascii() and len(row["timestamp"]) <= 40
    assert front.slack.calls == []  # no handler ran: nobody was looked up


def signed(body: bytes, content_type: bytes = FORM) -> dict[bytes, bytes]:
    now = str(int(time.time())).encode()
    return {
        b"Content-Type": content_type,
        b"X-Slack-Request-Timestamp": now,
        b"X-Slack-Signature": raw_sign(body, now),
    }


USER = {"id": "U0ALICE", "username": "alice", "team_id": "T0PROCTOR"}
CLICK = {
    "type": "block_actions",
    "user": USER,
    "trigger_id": "1.2.fake",
    "actions": [{"action_id": blocks.APPROVE, "value": "{}"}],
}
SUBMIT: dict[str, Any] = {
    "type": "view_submission",
    "user": USER,
    "trigger_id": "1.3.fake",
    "view": {"callback_id": blocks.DENY_MODAL, "private_metadata": "", "state": {"values": {}}},
}
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "payload is not JSON"),
        ("{'type': 'block_actions'}", "payload is not JSON"),
        (DEEP, "payload is not JSON"),
        ("[1, 2]", "payload is not a JSON object"),
        ("5", "payload is not a JSON object"),
        ('"block_actions"', "payload is not a JSON object"),
        ({}, "payload: type"),
        ({"type": "shortcut", "user": USER, "trigger_id": "1"}, "payload: type"),
        ({"type": "block_actions"}, "payload: trigger_id"),
        ({**CLICK, "user": "U0ALICE"}, "payload: user"),
        ({**CLICK, "user": {"name": "alice"}}, "payload: user.id"),
        ({**CLICK, "trigger_id": None}, "payload: trigger_id"),
        ({**CLICK, "actions": []}, "payload: actions"),
        ({**CLICK, "actions": ["approve"]}, "payload: actions.0"),
        ({**CLICK, "actions": [{"value": "{}"}]}, "payload: actions.0.action_id"),
        (
            {**CLICK, "actions": [{"action_id": blocks.APPROVE, "value": 5}]},
            "payload: actions.0.value",
        ),
        ({**CLICK, "channel": "C0APPROVALS"}, "payload: channel"),
        ({**CLICK, "team": ["T0PROCTOR"]}, "payload: team"),
        ({**CLICK, "authorizations": [1]}, "payload: authorizations.0"),
        ({k: v for k, v in SUBMIT.items() if k != "view"}, "payload: view"),
        ({**SUBMIT, "view": {"callback_id": 7}}, "payload: view.callback_id"),
        (
            {**SUBMIT, "view": {**SUBMIT["view"], "state": []}},
            "payload: view.state",
        ),
        (
            {
                **SUBMIT,
                "view": {
                    **SUBMIT["view"],
                    "state": {
                        "values": {"proctor.note": {"proctor.note_input": {"value": ["why"]}}}
                    },
                },
            },
            "payload: view.state.values.proctor.note.proctor.note_input.value",
        ),
    ],
)
async def test_signed_requests_that_are_not_interactions_get_400_and_an_audit_row(
    front: Front, payload: object, reason: str
) -> None:
    body = form(payload)
    assert await post(front, body, signed(body)) == 400
    [row] = await refusals_of(front, body)
    assert row["reason"].startswith(reason), row["reason"]
    assert front.slack.calls == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        # slack-sdk's verifier decodes the body as UTF-8: such a body can't be shown to be Slack's
        (b"payload=%7B%22type%22%3A%20%22block_actions%22%7D\xff", FORM, 401, "body is not UTF-8"),
        (b"nothing=here", FORM, 400, "payload: type"),  # no payload field at all
        (b"", FORM, 400, "payload: type"),
        (b"[1]", b"application/json", 400, "payload is not a JSON object"),
        (b"{not json", b"application/json", 400, "payload is not JSON"),
        (b"payload=%7B%7D", b"application/json", 400, "payload is not JSON"),  # a lying type
    ],
)
async def test_signed_bodies_that_are_not_slack_forms_are_refused(
    front: Front, body: bytes, content_type: bytes, status: int, reason: str
) -> None:
    body = body + (b"&n=" + uuid.uuid4().hex.encode() if content_type == FORM else b"")
    if content_type != FORM:  # a unique body all the same, for its audit row
        body = body + b" " * (uuid.uuid4().int % 1000 + 1)
    assert await post(front, body, signed(body, content_type)) == status
    [row] = await refusals_of(front, body)
    assert row["reason"].startswith(reason), row["reason"]
    assert front.slack.calls == []


async def test_a_well_formed_interaction_still_gets_through(front: Front) -> None:
    """The checks refuse malformed requests only: a real click's shape is acked (200), and
    with a button value bound to nothing it changes nothing."""
    body = form(
        {
            **CLICK,
            "trigger_id": f"{uuid.uuid4().hex}.fake",
            "team": {"id": "T0"},
            "channel": {"id": "C0APPROVALS", "name": "approvals"},
            "enterprise": None,
            "container": {"type": "message"},
            "message": {"ts": "1.2", "blocks": []},
        }
    )
    assert await post(front, body, signed(body)) == 200
    assert await refusals_of(front, body) == []


# --- one signature check per request ------------------------------------------------------


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The verdict of every signature verification in this process, whoever makes it (Proctor
    or Bolt, which both use slack-sdk's verifier): the real verifier, counted, not replaced."""
    verdicts: list[bool] = []
    real = SignatureVerifier.is_valid

    def counted(
        self: SignatureVerifier, body: str | bytes, timestamp: str | None, signature: str | None
    ) -> bool:
        verdict = real(self, body, timestamp, signature)
        verdicts.append(verdict)
        return verdict

    monkeypatch.setattr(SignatureVerifier, "is_valid", counted)
    return verdicts


def ephemerals(front: Front) -> int:
    return front.slack.calls.count("chat.postEphemeral")


async def test_each_request_is_verified_exactly_once(
    front: Front, verifications: list[bool], caplog: pytest.LogCaptureFixture
) -> None:
    """A bad signature and a stale timestamp are refused by the one check (401, audited);
    a genuine click passes it and Bolt does not check again; the same click replayed passes
    it too (it is Slack's) and is then dropped as a repeat, its listener never run."""
    caplog.set_level(logging.INFO, logger=approvals_log.name)
    button = blocks.ButtonValue(w=f"action-{uuid.uuid4().hex}", d="a" * 64).encode()
    click = form(
        {
            **CLICK,
            "trigger_id": f"{uuid.uuid4().hex}.fake",
            "channel": {"id": "C0APPROVALS"},
            "actions": [{"action_id": blocks.APPROVE, "value": button}],
        }
    )
    now, stale = str(int(time.time())).encode(), str(int(time.time()) - 301).encode()
    forged = {**signed(click), b"X-Slack-Signature": raw_sign(click, now, "another-secret")}
    late = {**signed(click), b"X-Slack-Request-Timestamp": stale}
    late[b"X-Slack-Signature"] = raw_sign(click, stale)

    assert await post(front, click, forged) == 401
    assert await post(front, click, late) == 401
    assert verifications == [False, False]
    assert [r["reason"] for r in await refusals_of(front, click)] == [
        "bad signature",
        "timestamp older than 5 minutes",
    ]

    assert await post(front, click, signed(click)) == 200
    assert verifications == [False, False, True]
    await eventually(lambda: ephemerals(front) == 1)  # told the request no longer exists

    assert await post(front, click, signed(click)) == 200  # a replay, freshly signed
    assert verifications == [False, False, True, True]
    assert "dropped a repeated Slack interaction" in caplog.text
    await asyncio.sleep(0.3)
    assert ephemerals(front) == 1


async def test_a_body_over_the_size_limit_is_refused_before_it_is_verified(
    front: Front, verifications: list[bool]
) -> None:
    body = form({"type": "block_actions", "pad": "x" * 1_000_000})
    assert await post(front, body, signed(body)) == 413
    assert verifications == []
