"""The agent's side of a governed HTTP call: its signed request, carried in one header.

Importable with the agent-side package alone (no web framework): any HTTP client can send it.

```python
headers = signed_request_headers(key, "POST", "/refunds/{order_id}",
                                 path_params={"order_id": 42}, body={"amount": 5},
                                 executor="refund-api")
httpx.post("https://api.example.com/refunds/42", json={"amount": 5}, headers=headers)
```

The header `Proctor-Request` is the base64url (unpadded) JSON of the agent's signed
`ActionRequest`: action `http:<METHOD>:<route template>` (path parameters written `:name`, the
form action names allow: `http:POST:/refunds/:order_id`) unless the service maps the route to
another action, params `{"path": {name: text}, "query": {name: text or [texts]}, "body": JSON
or null}` exactly as the HTTP request carries them, executed in handler mode by the service
named `executor`. Send the same headers again to re-send the same request (after an approval,
or a lost answer): it runs at most once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import JsonValue, ValidationError

from proctor.errors import InputError
from proctor.integrations import http_action
from proctor.models import ActionRequest, ExecutionMode, ExecutionSpec
from proctor.signing import AgentKey

REQUEST_HEADER = "Proctor-Request"
STATUS_PATH = "/proctor/requests"
"""Where an escalated request's status is served: `GET {STATUS_PATH}/{request_id}`."""
QueryValue = str | int | float | bool | None


class HeaderError(InputError):
    """The `Proctor-Request` header is missing or is not a signed request."""


def route_action(method: str, path_template: str) -> str:
    """The action a route is governed as by default: `http:POST:/refunds/:order_id` for
    `POST /refunds/{order_id}` (or `{order_id:int}`)."""
    return http_action(method, path_template)


def http_params(
    path_params: Mapping[str, object], query: Mapping[str, object], body: object
) -> dict[str, JsonValue]:
    """The params a governed HTTP request signs: path parameters as text, query parameters
    as text (a list when repeated), the body as its JSON value (None when there is none)."""
    return {
        "path": {name: str(value) for name, value in path_params.items()},
        "query": {name: _query_value(value) for name, value in query.items()},
        "body": json.loads(json.dumps(body)),
    }


def _query_value(value: object) -> JsonValue:
    """As it appears in the URL (httpx writes booleans as `true` / `false`, None as empty)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        texts: list[JsonValue] = [_query_text(item) for item in value]
        return texts[0] if len(texts) == 1 else texts
    return _query_text(value)


def _query_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def signed_request_headers(
    key: AgentKey,
    method: str,
    path_template: str,
    *,
    executor: str,
    path_params: Mapping[str, object] | None = None,
    query: Mapping[str, QueryValue | Sequence[QueryValue]] | None = None,
    body: Any = None,
    action: str | None = None,
    request_id: str | None = None,
    execution_timeout: timedelta = timedelta(hours=1),
) -> dict[str, str]:
    """The headers that make one HTTP request a governed action of this agent, executed by
    the service `executor` (its id in Proctor's registry). `action`: the name the service maps
    this route to, if not the default. After an approval, the request must be re-sent within
    `execution_timeout`."""
    spec = ExecutionSpec(
        mode=ExecutionMode.HANDLER,
        executor=executor,
        timeout_seconds=execution_timeout.total_seconds(),
    )
    request = key.new_request(
        action or route_action(method, path_template),
        http_params(path_params or {}, query or {}, body),
        spec,
        request_id=request_id,
    )
    return {REQUEST_HEADER: encode_request(request)}


def encode_request(request: ActionRequest) -> str:
    return base64.urlsafe_b64encode(request.model_dump_json().encode()).decode().rstrip("=")


def decode_request(value: str | None) -> ActionRequest:
    """The signed request a header carries (its signature is checked by Proctor, not here)."""
    if not value:
        raise HeaderError(f"no {REQUEST_HEADER} header: sign the request with the agent's key")
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return ActionRequest.model_validate_json(text)
    except (binascii.Error, ValueError) as exc:
        raise HeaderError(
            f"{REQUEST_HEADER} is not a signed request: {_first_error(exc)}"
        ) from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "request"
        return f"{where}: {error['msg']}"
    return "not base64url-encoded JSON"
