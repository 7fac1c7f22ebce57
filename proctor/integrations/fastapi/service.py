"""The web service's side of a governed request, framework-free: join the agent's signed
request, and execute it only with the permission taken by the service's own key.

What it trusts: nothing in the header before Proctor's workflow verified it. The service never
checks the agent's signature itself (it has no agent registry); it starts or joins the workflow
the request names, requires the workflow to govern this very signed request (a request id
re-signed with other content is refused), and runs the route only with a permission the
workflow grants to an ask signed by the service's key, which it grants only for a request whose
agent named this service, after the identity judge verified that agent's signature, time and
nonce, and after policy (and approvers) allowed it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import JsonValue
from temporalio import client as temporal_client
from temporalio.service import RPCError, RPCStatusCode

from proctor.client import Client, GovernanceError
from proctor.integrations import Governor
from proctor.integrations.fastapi.headers import STATUS_PATH
from proctor.models import (
    ActionRequest,
    ActionStatus,
    HandlerReport,
    Outcome,
    Progress,
    Stage,
    workflow_id_for,
)
from proctor.signing import AgentKey

Handle = temporal_client.WorkflowHandle[Any, Outcome]


@dataclass(frozen=True)
class Answer:
    """What to answer the agent instead of running the route."""

    status_code: int
    body: JsonValue
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(frozen=True)
class Permitted:
    """This process holds the one permission: run the route, then `report`."""

    handle: Handle
    claim_token: str


@dataclass(frozen=True)
class Closed:
    """The request was decided and closed before (a replay, a re-send, a lost answer)."""

    outcome: Outcome


Turn = Answer | Permitted | Closed


class ExecutionService:
    """A web service executing agents' governed requests with its own registered key."""

    def __init__(
        self,
        key: AgentKey,
        client: Client | None = None,
        *,
        status_path: str = STATUS_PATH,
        decide_within: timedelta = timedelta(seconds=30),
    ) -> None:
        self.governor = Governor(key, client)
        self.status_path = status_path.rstrip("/")
        self.decide_within = decide_within

    @property
    def service_id(self) -> str:
        return self.governor.key.agent_id

    def refusal(self, request: ActionRequest) -> Answer | None:
        """A request this service must not execute, whoever signed it."""
        if request.execution.executor != self.service_id:
            named = request.execution.executor or "no execution service"
            return Answer(403, {"error": f"the request names {named}, not {self.service_id}"})
        return None

    async def govern(self, request: ActionRequest, root_path: str = "") -> Turn:
        """Start or join the request's workflow and return once it is decided: answer now
        (escalated, refused), run the route (permitted here), or replay a closed outcome."""
        client = await self.governor.client()
        try:
            handle = await client.join(request)
            conflict = await self._conflict(client, handle, request)
            if conflict is not None:
                return conflict
            progress = await self._decided(client, handle.id)
            if progress.stage is Stage.AWAITING_APPROVAL:
                return self._pending(request, root_path, progress)
            if progress.stage is not Stage.CLOSED:
                handle, token = await client.permission(request, self.governor.key)
                if token is not None:
                    return Permitted(handle, token)
        except (RPCError, GovernanceError, TimeoutError) as exc:
            return unavailable(exc)
        return await self._closed(client, handle, request, root_path)

    async def _closed(
        self, client: Client, handle: Handle, request: ActionRequest, root_path: str
    ) -> Turn:
        """The outcome of a request this process does not run. Another call holding the
        permission (a concurrent copy, or a process that died running it) is waited for only
        `decide_within`: then 202, never an answer hanging until the execution timeout."""
        try:
            async with asyncio.timeout(self.decide_within.total_seconds()):
                return Closed(await client.result(handle))
        except TimeoutError:
            return self._pending(request, root_path)
        except (RPCError, GovernanceError) as exc:
            return unavailable(exc)

    async def report(self, permitted: Permitted, report: HandlerReport) -> Outcome:
        """How the route went, signed by the service's key."""
        client = await self.governor.client()
        return await client.report(permitted.handle, self.governor.key, report)

    async def status(self, request: ActionRequest, request_id: str) -> Answer:
        """Where a request stands, only for the holder of its signed request."""
        if request.request_id != request_id:
            return Answer(403, {"error": "the signed request is for another request id"})
        refused = self.refusal(request)
        if refused is not None:
            return refused
        client = await self.governor.client()
        handle = client.temporal.get_workflow_handle(workflow_id_for(request_id))
        try:
            conflict = await self._conflict(client, handle, request)
            if conflict is not None:
                return conflict
            progress = await client.progress(handle.id)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return Answer(404, {"error": f"no request {request_id}: it was never sent"})
            return unavailable(exc)
        return Answer(200, progress.model_dump(mode="json"))

    async def _conflict(
        self, client: Client, handle: Handle, request: ActionRequest
    ) -> Answer | None:
        """The workflow governs another signed request under this id (e.g. re-signed with
        other content): nothing here may run or be told about it."""
        first = await client.submitted(handle.id)
        if first is not None and first == request:
            return None
        return Answer(
            409,
            {
                "error": f"request id {request.request_id} names another signed request: "
                "re-send the very same headers, or use a new request id",
            },
        )

    async def _decided(self, client: Client, workflow_id: str) -> Progress:
        return await client.decided(workflow_id, within=self.decide_within)

    def _pending(
        self, request: ActionRequest, root_path: str, progress: Progress | None = None
    ) -> Answer:
        """202: awaiting approval (with `progress`), else executing in another call; the
        status URL says when to send the same request again."""
        location = f"{root_path}{self.status_path}/{request.request_id}"
        body: dict[str, JsonValue] = {
            "status": "awaiting_approval" if progress is not None else "executing",
            "request_id": request.request_id,
            "workflow_id": request.workflow_id,
            "status_url": location,
        }
        if progress is not None and progress.pending is not None:
            card = progress.pending.card
            body |= {
                "rule": card.rule_id,
                "reason": card.reason,
                "approvers": list(card.approvers),
                "deadline": card.deadline.isoformat(),
            }
        return Answer(202, body, {"Location": location})


def verdict_answer(outcome: Outcome) -> Answer:
    """A request that did not complete: 401 when Proctor refused the agent's identity, 403
    when policy or approvers said no, 500 when the route failed or its end is unknown."""
    body: dict[str, JsonValue] = {
        "status": outcome.status.value,
        "rule": outcome.decision.rule_id,
        "reason": outcome.decision.reason,
        "workflow_id": outcome.workflow_id,
    }
    if outcome.status in (ActionStatus.FAILED, ActionStatus.UNKNOWN):
        return Answer(500, body | {"error": outcome.error})
    return Answer(401 if outcome.decision.rule_id.startswith("identity:") else 403, body)


def unavailable(exc: Exception) -> Answer:
    """Governance could not be reached or completed: nothing ran (fail closed)."""
    return Answer(503, {"error": f"Proctor is unavailable, nothing was executed: {exc}"})
