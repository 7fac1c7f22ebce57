"""ProctorMiddleware: an agent-facing Starlette / FastAPI app whose routes run only as governed
actions of the agent that signed the request.

```python
app.add_middleware(ProctorMiddleware, key=AgentKey.from_env())  # the service's own key
```

Per governed request: no or garbled `Proctor-Request` header → 401; signed for another
route, path, query or body than this HTTP request carries → 403; then the agent's signed request
is started (or joined) in Proctor: allowed → the route runs once, its response is recorded and
answered; escalated → 202 with `Location: /proctor/requests/{request_id}` (GET it with the same
header for the progress; re-send the same request once approved); denied, rejected, timed out
→ 403 `{status, rule, reason, workflow_id}` (401 when Proctor refused the agent's identity). A
request sent again after it ran gets the recorded response, never a second run. Responses of
governed routes are held until recorded (no streaming).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from proctor.client import Client
from proctor.errors import ConfigurationError
from proctor.integrations.fastapi.exchange import (
    BodyError,
    HeldResponse,
    closed_answer,
    http_response,
    json_body,
    query_params,
    read_body,
    replaying,
)
from proctor.integrations.fastapi.headers import (
    REQUEST_HEADER,
    STATUS_PATH,
    HeaderError,
    decode_request,
    http_params,
)
from proctor.integrations.fastapi.routes import RouteActions, Unroutable, mismatch
from proctor.integrations.fastapi.service import Answer, Closed, ExecutionService, Permitted
from proctor.models import ActionRequest, HandlerReport
from proctor.signing import AgentKey

log = logging.getLogger(__name__)
_HEADER = REQUEST_HEADER.lower().encode("latin-1")


class ProctorMiddleware:
    """Governs an app's routes (all of them, or those `actions=` maps to an action name) as
    actions of the agents calling it, executed by this service with its own `key`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        key: AgentKey,
        client: Client | None = None,
        actions: Mapping[str, str] | None = None,
        status_path: str = STATUS_PATH,
        max_body_bytes: int = 1_000_000,
        decide_within: timedelta = timedelta(seconds=30),
    ) -> None:
        self.app = app
        self.service = ExecutionService(
            key, client, status_path=status_path, decide_within=decide_within
        )
        self.routes = RouteActions(actions)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.routes.actions is None:
            await send({"type": "websocket.close", "code": 1008})  # not governable: refused
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._status_request_id(scope)
        if request_id is not None:
            await self._respond(await self._status(scope, request_id), scope, receive, send)
            return
        try:
            governed = self.routes.governed(scope, _routes(scope))
        except Unroutable as exc:
            await self._respond(Answer(403, {"error": str(exc)}), scope, receive, send)
            return
        except ConfigurationError as exc:  # fail closed: nothing runs until it is fixed
            log.error("%s", exc)
            await self._respond(Answer(500, {"error": str(exc)}), scope, receive, send)
            return
        if governed is None:
            await self.app(scope, receive, send)
            return
        try:
            request = decode_request(_header(scope))
            raw = await read_body(receive, self.max_body_bytes)
            params = http_params(governed.path_params, query_params(scope), json_body(raw))
        except HeaderError as exc:
            await self._respond(Answer(401, {"error": str(exc)}), scope, receive, send)
            return
        except BodyError as exc:
            await self._respond(Answer(exc.status_code, {"error": str(exc)}), scope, receive, send)
            return
        refused = self.service.refusal(request)
        differs = mismatch(request, governed.action, params)
        if refused is None and differs is not None:
            refused = Answer(403, {"error": f"not what the agent signed: {differs}"})
        if refused is not None:
            await self._respond(refused, scope, receive, send)
            return
        await self._govern(request, raw, scope, receive, send)

    async def _govern(
        self, request: ActionRequest, raw: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        turn = await self.service.govern(request, scope.get("root_path", ""))
        if isinstance(turn, Answer):
            await self._respond(turn, scope, receive, send)
        elif isinstance(turn, Closed):
            await self._respond(closed_answer(turn.outcome), scope, receive, send)
        else:
            await self._run(turn, raw, scope, receive, send)

    async def _run(
        self, permitted: Permitted, raw: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the route with the one permission; report, then answer what it answered."""
        held = HeldResponse()
        try:
            await self.app(scope, replaying(raw, receive), held.send)
        except Exception as exc:
            failed = HandlerReport(
                claim_token=permitted.claim_token,
                succeeded=False,
                error=f"{type(exc).__name__}: {exc}",
            )
            await self._report(permitted, failed)
            raise
        await self._report(permitted, held.report(permitted.claim_token))
        await held.release(send)

    async def _report(self, permitted: Permitted, report: HandlerReport) -> None:
        try:
            await self.service.report(permitted, report)
        except Exception:  # the route ran: its answer still goes out; Proctor records unknown
            log.exception("%s: the route ran but its report failed", permitted.handle.id)

    def _status_request_id(self, scope: Scope) -> str | None:
        """The request id of `GET {status_path}/{request_id}`, if this is that."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        prefix = f"{self.service.status_path}/"
        request_id = path[len(prefix) :] if path.startswith(prefix) else ""
        return request_id if request_id and "/" not in request_id else None

    async def _status(self, scope: Scope, request_id: str) -> Answer:
        if scope["method"] != "GET":
            return Answer(405, {"error": "the status of a request is read with GET"})
        try:
            request = decode_request(_header(scope))
        except HeaderError as exc:
            return Answer(401, {"error": str(exc)})
        return await self.service.status(request, request_id)

    @staticmethod
    async def _respond(answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        await http_response(answer)(scope, receive, send)


def _routes(scope: Scope) -> list[BaseRoute]:
    """The routes of the Starlette / FastAPI app this middleware was added to."""
    routes = getattr(scope.get("app"), "routes", None)
    if not isinstance(routes, list):
        raise ConfigurationError("ProctorMiddleware governs a Starlette or FastAPI app's routes")
    return routes


def _header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == _HEADER:
            return str(value.decode("latin-1"))
    return None
