"""One HTTP exchange as Proctor records it: what the request carries (to compare with what the
agent signed) and the route's response (reported, and answered again to a replay).

Pure ASGI plumbing, no framework: the body is read once, handed on to the app unchanged, and
the app's response is held until the report is in, so an answer the agent sees is recorded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic import JsonValue
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from proctor.canonical import canonical_bytes
from proctor.errors import InputError
from proctor.integrations.fastapi.service import Answer, verdict_answer
from proctor.models import ActionStatus, HandlerReport, Outcome

JSON_MEDIA_TYPE = "application/json"


class BodyError(InputError):
    """A governed request whose body Proctor cannot sign: too large, or not JSON."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body (at most `limit` bytes)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BodyError(400, "the client went away before sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"a governed request's body is at most {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def json_body(raw: bytes) -> JsonValue:
    """The body as its JSON value (None when empty)."""
    if not raw.strip():
        return None
    try:
        value: JsonValue = json.loads(raw)
        canonical_bytes(value)  # what is signed: no NaN, no integer beyond 2**53
    except (ValueError, RecursionError):  # nested deeper than the parser goes: not signable
        raise BodyError(415, "a governed request's body must be JSON (or empty)") from None
    return value


def query_params(scope: Scope) -> dict[str, JsonValue]:
    """Query parameters as text, a list when repeated (the form the agent signs)."""
    grouped: dict[str, list[str]] = {}
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), True):
        grouped.setdefault(name, []).append(value)
    return {
        name: values[0] if len(values) == 1 else list(values) for name, values in grouped.items()
    }


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving the app the body already read, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


@dataclass
class HeldResponse:
    """The app's response, held back until its report is in."""

    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status_code(self) -> int:
        for message in self.messages:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return 500

    @property
    def media_type(self) -> str:
        for message in self.messages:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        return str(value.decode("latin-1").split(";")[0].strip())
        return ""

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )

    def report(self, claim_token: str) -> HandlerReport:
        """A response below 500 is the route done (its status and body recorded, answered
        again to a replay); 500 and above is the route failed."""
        if self.status_code >= 500:
            error = f"HTTP {self.status_code}: {self.body[:500].decode('utf-8', 'replace')}"
            return HandlerReport(claim_token=claim_token, succeeded=False, error=error)
        return HandlerReport(claim_token=claim_token, succeeded=True, result=self.recorded())

    def recorded(self) -> dict[str, JsonValue]:
        body: JsonValue = self.body.decode("utf-8", "replace")
        if self.media_type == JSON_MEDIA_TYPE and self.body:
            with contextlib.suppress(ValueError):
                body = json.loads(self.body)
        return {"status_code": self.status_code, "media_type": self.media_type, "body": body}

    async def release(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


def recorded_answer(result: Any) -> Answer | None:
    """The response a completed request recorded, to answer a replay with (None if the
    result is not one this adapter recorded)."""
    if not isinstance(result, Mapping) or not isinstance(result.get("status_code"), int):
        return None
    media_type = result.get("media_type")
    return Answer(
        result["status_code"],
        result.get("body"),
        media_type=media_type if isinstance(media_type, str) else "",
    )


def closed_answer(outcome: Outcome) -> Answer:
    """A request that closed before: its recorded response, or why it did not run (409 when
    it ran but its response was not recorded here)."""
    if outcome.status is not ActionStatus.COMPLETED:
        return verdict_answer(outcome)
    recorded = recorded_answer(outcome.result)
    if recorded is not None:
        return recorded
    return Answer(
        409,
        {
            "status": outcome.status.value,
            "workflow_id": outcome.workflow_id,
            "error": "this request already ran: sending it again runs nothing",
        },
    )


def http_response(answer: Answer) -> Response:
    if answer.media_type == JSON_MEDIA_TYPE:
        return JSONResponse(answer.body, answer.status_code, answer.headers)
    content = "" if answer.body is None else str(answer.body)
    return Response(content, answer.status_code, answer.headers, answer.media_type or None)
