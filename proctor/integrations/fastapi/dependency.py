"""`Depends(guard("refund_requests", key=service_key))`: one FastAPI route governed as an
action, the same way ProctorMiddleware governs every route.

Refusals are FastAPI's `HTTPException`s, so their JSON is `{"detail": {status, rule, reason,
workflow_id}}` (202 for an escalation, with `Location`). A dependency cannot see the route's
response: a request re-sent after it ran is answered 409 (it ran, nothing runs again) instead
of with the recorded response. Include `status_router(key=...)` in the app to serve the status
URL an escalation points to.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response
from starlette.routing import Route

from proctor.client import Client
from proctor.integrations.fastapi.exchange import (
    BodyError,
    closed_answer,
    http_response,
    json_body,
    query_params,
)
from proctor.integrations.fastapi.headers import (
    REQUEST_HEADER,
    STATUS_PATH,
    HeaderError,
    decode_request,
    http_params,
)
from proctor.integrations.fastapi.routes import mismatch
from proctor.integrations.fastapi.service import Answer, Closed, ExecutionService, Permitted
from proctor.models import HandlerReport
from proctor.signing import AgentKey

log = logging.getLogger(__name__)
Guard = Callable[[Request], AsyncIterator[None]]


def guard(
    action: str,
    *,
    key: AgentKey,
    client: Client | None = None,
    status_path: str = STATUS_PATH,
    decide_within: timedelta = timedelta(seconds=30),
) -> Guard:
    """A dependency running its route only as the calling agent's governed `action`,
    executed by this service (`key`: the service's own key)."""
    service = ExecutionService(key, client, status_path=status_path, decide_within=decide_within)

    async def proctor_guard(request: Request) -> AsyncIterator[None]:
        permitted = await _permission(service, action, request)
        try:
            yield
        except HTTPException as exc:  # the route answered (a 4xx is an answer, not a failure)
            await _report(service, permitted, exc.status_code < 500, f"HTTP {exc.status_code}")
            raise
        except Exception as exc:
            await _report(service, permitted, False, f"{type(exc).__name__}: {exc}")
            raise
        await _report(service, permitted, True, None)

    return proctor_guard


async def _permission(service: ExecutionService, action: str, request: Request) -> Permitted:
    """The permission to run this route now, or the HTTPException answering instead."""
    route = request.scope.get("route")
    if not isinstance(route, Route):
        raise _refusal(Answer(500, {"error": "guard() is for the dependencies of a route"}))
    try:
        signed = decode_request(request.headers.get(REQUEST_HEADER))
        path = {
            name: route.param_convertors[name].to_string(value)
            if name in route.param_convertors
            else str(value)
            for name, value in request.path_params.items()
        }
        params = http_params(path, query_params(request.scope), json_body(await request.body()))
    except HeaderError as exc:
        raise _refusal(Answer(401, {"error": str(exc)})) from None
    except BodyError as exc:
        raise _refusal(Answer(exc.status_code, {"error": str(exc)})) from None
    refused = service.refusal(signed)
    differs = mismatch(signed, action, params)
    if refused is None and differs is not None:
        refused = Answer(403, {"error": f"not what the agent signed: {differs}"})
    if refused is not None:
        raise _refusal(refused)
    turn = await service.govern(signed, request.scope.get("root_path", ""))
    if isinstance(turn, Closed):
        raise _refusal(closed_answer(turn.outcome))
    if isinstance(turn, Answer):
        raise _refusal(turn)
    return turn


async def _report(
    service: ExecutionService, permitted: Permitted, succeeded: bool, error: str | None
) -> None:
    report = HandlerReport(
        claim_token=permitted.claim_token, succeeded=succeeded, error=None if succeeded else error
    )
    try:
        await service.report(permitted, report)
    except Exception:  # the route ran: its answer still goes out; Proctor records unknown
        log.exception("%s: the route ran but its report failed", permitted.handle.id)


def _refusal(answer: Answer) -> HTTPException:
    return HTTPException(answer.status_code, detail=answer.body, headers=answer.headers or None)


def status_router(
    *, key: AgentKey, client: Client | None = None, path: str = STATUS_PATH
) -> APIRouter:
    """`GET {path}/{request_id}`: where a request stands, for the holder of its signed
    request (the same `Proctor-Request` header) only."""
    service = ExecutionService(key, client, status_path=path)
    router = APIRouter()

    @router.get(f"{service.status_path}/{{request_id}}", include_in_schema=False)
    async def proctor_request_status(request_id: str, request: Request) -> Response:
        try:
            signed = decode_request(request.headers.get(REQUEST_HEADER))
        except HeaderError as exc:
            return http_response(Answer(401, {"error": str(exc)}))
        return http_response(await service.status(signed, request_id))

    return router


__all__ = ["guard", "status_router"]
