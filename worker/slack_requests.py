"""What an HTTP request must be before the approvals app lets Bolt read it.

Two gates, each a plain function so that it is tested alone: `refusal_reason` (is it Slack's?
401) and `interaction_problem` (is it an interaction we handle, in the shape Slack sends? 400).
Every header and field is attacker-controlled until the signature checks out, and even after it
a malformed body must be a clear refusal, never an exception inside Bolt or a listener.
`refusal_reason` is the app's only signature check: Bolt's own is off (worker/approvals_app.py
says why).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from slack_bolt.request.internals import (
    build_normalized_headers,
    extract_content_type,
    parse_body,
)
from slack_sdk.signature import SignatureVerifier

SIGNATURE_WINDOW_SECONDS = 300
MAX_TIMESTAMP_DIGITS = 12
"""Unix seconds have 10 digits until the year 2286; anything longer is not a time."""
BOLT_HEADERS = frozenset(
    {
        "content-type",
        "x-slack-request-timestamp",
        "x-slack-signature",
        "x-slack-retry-num",
        "x-slack-retry-reason",
    }
)
"""The headers Bolt is given; never its own `x-slack-bolt-*` controls, which nobody signs."""


def refusal_reason(
    verifier: SignatureVerifier, body: bytes, timestamp: str | None, signature: str | None
) -> str | None:
    """Why a request isn't Slack's, or None. The verdict is slack-sdk's verifier, called once
    (it also refuses timestamps more than 5 minutes away, so a stale copy fails it); what
    comes first only keeps out the values that would make it raise (`"²".isdigit()` is true
    but `int("²")` fails; `hmac.compare_digest` refuses non-ASCII text; the verifier decodes
    the body as UTF-8, and Slack's bodies always are), and what comes after only names why."""
    if not timestamp or not signature:
        return "missing signature or timestamp"
    if not _utf8(body):
        return "body is not UTF-8"
    if not (timestamp.isascii() and timestamp.isdigit()):
        return "non-numeric timestamp"
    if len(timestamp) > MAX_TIMESTAMP_DIGITS:
        return "timestamp out of range"
    if signature.isascii() and verifier.is_valid(body, timestamp, signature):
        return None
    if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        return "timestamp older than 5 minutes"
    return "bad signature"


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def printable(value: str | None, limit: int = 40) -> str:
    """An attacker's header as ASCII that any log or audit row can hold (escapes shown), cut."""
    return ascii(value or "")[1:-1][:limit]


def bolt_headers(headers: dict[str, str]) -> dict[str, str | Sequence[str]]:
    return {k: v for k, v in headers.items() if k.lower() in BOLT_HEADERS}


# --- the shapes Slack sends (only what Bolt and our listeners read is checked) --------------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Named(_Shape):
    """A user, team, channel or enterprise: Slack sends an object with an id."""

    id: str


class _Action(_Shape):
    action_id: str
    block_id: str | None = None
    value: str | None = None


class _Input(_Shape):
    value: str | None = None


class _ViewState(_Shape):
    values: dict[str, dict[str, _Input]] = {}


class _View(_Shape):
    callback_id: str
    private_metadata: str = ""
    state: _ViewState | None = None


class _Interaction(_Shape):
    trigger_id: str
    user: _Named
    team: _Named | None = None
    enterprise: _Named | None = None
    channel: _Named | None = None
    container: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    authorizations: list[dict[str, Any]] | None = None
    response_url: str | None = None
    response_urls: list[dict[str, Any]] | None = None


class _BlockActions(_Interaction):
    type: Literal["block_actions"]
    actions: list[_Action] = Field(min_length=1)
    view: dict[str, Any] | None = None


class _ViewSubmission(_Interaction):
    type: Literal["view_submission"]
    view: _View


_INTERACTION: TypeAdapter[_BlockActions | _ViewSubmission] = TypeAdapter(
    Annotated[_BlockActions | _ViewSubmission, Field(discriminator="type")]
)


def interaction_problem(raw: bytes, headers: dict[str, str]) -> str | None:
    """Why a (signed) body is not an interaction we handle, or None. The payload is parsed
    the way Bolt will parse it, so what passes here is exactly what Bolt dispatches."""
    if not _utf8(raw):
        return "body is not UTF-8"
    text = raw.decode("utf-8")
    content_type = extract_content_type(build_normalized_headers(dict(bolt_headers(headers))))
    try:
        payload = parse_body(text, content_type)
    except (ValueError, RecursionError):
        return "payload is not JSON"
    if not isinstance(payload, dict):
        return "payload is not a JSON object"
    try:
        _INTERACTION.validate_python(payload)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"][1:])  # [0]: the union's tag
        return printable(f"payload: {where or 'type'}: {error['msg']}", 200)
    return None
