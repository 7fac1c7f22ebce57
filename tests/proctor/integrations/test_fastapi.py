"""The ASGI adapter: a real FastAPI app served in-process (httpx's ASGITransport), called by an
agent signing its requests with `signed_request_headers`, governed by a real worker on Temporal
and Postgres under tests/e2e/policies/frameworks.yaml (GETs allowed, DELETEs denied, POSTs to
/refunds escalated to alice). The service executes with its own registered key."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel

from proctor import AgentKey
from proctor.integrations.fastapi import (
    REQUEST_HEADER,
    ProctorMiddleware,
    guard,
    signed_request_headers,
    status_router,
)
from proctor.integrations.fastapi.headers import decode_request, http_params, route_action
from proctor.models import HandlerReport, workflow_id_for
from proctor.stores.agents import AgentStore
from tests.helpers.harness import OWNER, Harness

ALICE = "alice@example.com"


class Refund(BaseModel):
    amount: float


class Api:
    """The agent-facing app, remembering every route that ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.app = FastAPI()
        app = self.app

        @app.get("/orders/{order_id}")
        async def get_order(order_id: int, expand: str = "") -> dict[str, Any]:
            self.ran.append(f"get {order_id}")
            return {"order": order_id, "expand": expand}

        @app.delete("/customers/{customer_id}")
        async def delete_customer(customer_id: str) -> dict[str, str]:
            self.ran.append(f"delete {customer_id}")
            return {"deleted": customer_id}

        @app.post("/refunds/{order_id}")
        async def refund(order_id: int, body: Refund) -> dict[str, Any]:
            self.ran.append(f"refund {order_id}")
            if body.amount <= 0:
                raise HTTPException(422, "nothing to refund")
            return {"refunded": body.amount, "order": order_id}


@pytest.fixture
async def service(gov: Harness) -> AgentKey:
    """The web service's own key, registered in Proctor like any principal."""
    key = AgentKey.generate(f"refund-api-{uuid.uuid4().hex[:8]}")
    await AgentStore(gov.pool).register(
        key.agent_id, role="framework", owner=OWNER, public_key_pem=key.public_key_pem
    )
    return key


@pytest.fixture
async def agent(gov: Harness) -> AgentKey:
    return await gov.new_agent(role="framework")


@pytest.fixture
async def api(gov: Harness, service: AgentKey) -> Api:
    api = Api()
    api.app.add_middleware(ProctorMiddleware, key=service, client=gov.proctor)
    return api


@pytest.fixture
async def http(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def headers(
    agent: AgentKey, service: AgentKey, method: str, template: str, **signed: Any
) -> dict[str, str]:
    return signed_request_headers(agent, method, template, executor=service.agent_id, **signed)


async def test_an_allowed_get_runs_the_route_once_and_a_replay_gets_the_recorded_answer(
    gov: Harness, agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    query: dict[str, str | bool | list[str]] = {"expand": "items", "tag": ["a", "b"], "fresh": True}
    sent = headers(
        agent, service, "GET", "/orders/{order_id}", path_params={"order_id": 7}, query=query
    )

    first = await http.get("/orders/7", params=query, headers=sent)
    again = await http.get("/orders/7", params=query, headers=sent)

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"order": 7, "expand": "items"}
    assert api.ran == ["get 7"]
    request_id = signed_request(sent)["request_id"]
    rows = await gov.audit.for_workflow(workflow_id_for(request_id))
    assert [row.event_type for row in rows] == ["decided", "trust_changed", "outcome"]
    assert all(row.agent_id == agent.agent_id for row in rows)


async def test_a_denied_delete_answers_403_with_the_reason_and_never_runs(
    agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    sent = headers(
        agent, service, "DELETE", "/customers/{customer_id}", path_params={"customer_id": "c1"}
    )

    answer = await http.delete("/customers/c1", headers=sent)

    assert answer.status_code == 403
    assert answer.json() == {
        "status": "denied",
        "rule": "framework-no-http-deletes",
        "reason": "Agents never delete customer data",
        "workflow_id": workflow_id_for(signed_request(sent)["request_id"]),
    }
    assert api.ran == []


async def test_an_escalated_refund_answers_202_and_runs_once_when_resent_after_approval(
    gov: Harness, agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    sent = refund_headers(agent, service, amount=25.5)

    pending = await http.post("/refunds/42", json={"amount": 25.5}, headers=sent)

    assert pending.status_code == 202
    request_id = signed_request(sent)["request_id"]
    assert pending.headers["location"] == f"/proctor/requests/{request_id}"
    assert pending.json()["rule"] == "framework-http-refunds"
    assert pending.json()["approvers"] == [ALICE]
    status = await http.get(pending.headers["location"], headers=sent)
    assert status.status_code == 200 and status.json()["stage"] == "awaiting_approval"
    assert (await http.get(pending.headers["location"])).status_code == 401
    assert api.ran == []

    await gov.vote(workflow_id_for(request_id), ALICE, approve=True)
    await gov.wait_for_stage(workflow_id_for(request_id), "awaiting_execution")
    done = await http.post("/refunds/42", json={"amount": 25.5}, headers=sent)
    replayed = await http.post("/refunds/42", json={"amount": 25.5}, headers=sent)

    assert done.status_code == replayed.status_code == 200
    assert done.json() == replayed.json() == {"refunded": 25.5, "order": 42}
    assert api.ran == ["refund 42"]
    status = await http.get(pending.headers["location"], headers=sent)
    assert status.json()["outcome"]["status"] == "completed"


async def test_a_rejected_refund_answers_403_when_resent_and_never_runs(
    gov: Harness, agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    sent = refund_headers(agent, service, amount=900)
    assert (await http.post("/refunds/42", json={"amount": 900}, headers=sent)).status_code == 202

    workflow_id = workflow_id_for(signed_request(sent)["request_id"])
    await gov.vote(workflow_id, ALICE, approve=False)
    await gov.wait_for_stage(workflow_id, "closed")
    answer = await http.post("/refunds/42", json={"amount": 900}, headers=sent)

    assert answer.status_code == 403
    assert answer.json()["status"] == "rejected"
    assert answer.json()["rule"] == "framework-http-refunds"
    assert api.ran == []


async def test_an_http_request_other_than_the_signed_one_is_refused_before_governance(
    gov: Harness, agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    sent = refund_headers(agent, service, amount=5)
    tampered = [
        await http.post("/refunds/42", json={"amount": 5000}, headers=sent),
        await http.post("/refunds/43", json={"amount": 5}, headers=sent),
        await http.post("/refunds/42", params={"force": "1"}, json={"amount": 5}, headers=sent),
        await http.delete("/customers/42", headers=sent),
    ]

    assert [answer.status_code for answer in tampered] == [403, 403, 403, 403]
    assert "body is not what the agent signed" in tampered[0].json()["error"]
    assert "path is not what the agent signed" in tampered[1].json()["error"]
    assert "query is not what the agent signed" in tampered[2].json()["error"]
    assert "signed for http:POST:/refunds/:order_id" in tampered[3].json()["error"]
    assert api.ran == []
    assert await gov.audit.for_workflow(workflow_id_for(signed_request(sent)["request_id"])) == []


async def test_no_garbled_or_forged_header_runs_anything(
    gov: Harness, agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    """The service trusts nothing the header claims: a header whose signature does not hold is
    refused by Proctor's identity judge (audited), not by the service's say-so."""
    missing = await http.get("/orders/7")
    garbled = await http.get("/orders/7", headers={REQUEST_HEADER: "not-a-request"})
    forged_request = signed_request(
        headers(agent, service, "GET", "/orders/{order_id}", path_params={"order_id": 7})
    )
    forged_request["nonce"] = "n" * 24  # anything edited: the agent's signature no longer holds
    forged = await http.get("/orders/7", headers={REQUEST_HEADER: encode(forged_request)})
    other_service = await http.get(
        "/orders/7",
        headers=signed_request_headers(
            agent, "GET", "/orders/{order_id}", path_params={"order_id": 7}, executor="another-api"
        ),
    )

    assert (missing.status_code, garbled.status_code) == (401, 401)
    assert "no Proctor-Request header" in missing.json()["error"]
    assert "is not a signed request" in garbled.json()["error"]
    assert forged.status_code == 401
    assert forged.json()["rule"] == "identity:bad_signature"
    assert other_service.status_code == 403
    never_sent = headers(agent, service, "GET", "/orders/{order_id}", path_params={"order_id": 7})
    unknown = f"/proctor/requests/{signed_request(never_sent)['request_id']}"
    assert (await http.get(unknown, headers=never_sent)).status_code == 404
    assert api.ran == []


async def test_a_request_id_resigned_with_other_content_is_refused(
    agent: AgentKey, service: AgentKey, api: Api, http: httpx.AsyncClient
) -> None:
    first = refund_headers(agent, service, amount=5)
    request_id = signed_request(first)["request_id"]
    assert (await http.post("/refunds/42", json={"amount": 5}, headers=first)).status_code == 202

    other = refund_headers(agent, service, amount=5000, request_id=request_id)
    answer = await http.post("/refunds/42", json={"amount": 5000}, headers=other)
    status = await http.get(f"/proctor/requests/{request_id}", headers=other)

    assert (answer.status_code, status.status_code) == (409, 409)
    assert api.ran == []


async def test_a_request_another_call_is_executing_answers_202_instead_of_waiting(
    gov: Harness, agent: AgentKey, service: AgentKey
) -> None:
    """A copy sent while another call (here: another process of the service) holds the one
    permission waits at most `decide_within`, runs nothing, then gets the recorded answer."""
    api = Api()
    api.app.add_middleware(
        ProctorMiddleware, key=service, client=gov.proctor, decide_within=timedelta(seconds=1.5)
    )
    sent = headers(agent, service, "GET", "/orders/{order_id}", path_params={"order_id": 7})
    request = decode_request(sent[REQUEST_HEADER])
    handle, token = await gov.proctor.permission(request, service)
    assert token is not None

    async with client_of(api.app) as http:
        meanwhile = await http.get("/orders/7", headers=sent)
        recorded = {"status_code": 200, "media_type": "application/json", "body": {"order": 7}}
        report = HandlerReport(claim_token=token, succeeded=True, result=recorded)
        await gov.proctor.report(handle, service, report)
        after = await http.get("/orders/7", headers=sent)

    assert meanwhile.status_code == 202 and meanwhile.json()["status"] == "executing"
    assert after.status_code == 200 and after.json() == {"order": 7}
    assert api.ran == []


async def test_actions_maps_chosen_routes_and_leaves_the_rest_ungoverned(
    gov: Harness, agent: AgentKey, service: AgentKey
) -> None:
    api = Api()
    api.app.add_middleware(
        ProctorMiddleware,
        key=service,
        client=gov.proctor,
        actions={"GET /orders/{order_id}": "tool:get_order"},
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://api"
    ) as http:
        unsigned = await http.get("/orders/7")
        sent = headers(
            agent,
            service,
            "GET",
            "/orders/{order_id}",
            path_params={"order_id": 7},
            action="tool:get_order",
        )
        governed = await http.get("/orders/7", headers=sent)
        ungoverned = await http.delete("/customers/c1")

    assert (unsigned.status_code, governed.status_code, ungoverned.status_code) == (401, 200, 200)
    assert api.ran == ["get 7", "delete c1"]


async def test_actions_naming_a_route_the_app_lacks_runs_nothing(
    gov: Harness, service: AgentKey
) -> None:
    """A typo in the mapping would leave the real route ungoverned: every request fails."""
    api = Api()
    typo = {"GET /order/{order_id}": "tool:get_order"}
    api.app.add_middleware(ProctorMiddleware, key=service, client=gov.proctor, actions=typo)
    async with client_of(api.app) as http:
        answer = await http.get("/orders/7")

    assert answer.status_code == 500
    assert "actions= names routes the app does not have" in answer.json()["error"]
    assert api.ran == []


async def test_guard_governs_one_route_the_same_way(
    gov: Harness, agent: AgentKey, service: AgentKey
) -> None:
    ran: list[float] = []
    app = FastAPI()
    app.include_router(status_router(key=service, client=gov.proctor))

    @app.post(
        "/refunds/{order_id}",
        dependencies=[Depends(guard("http:POST:/refunds", key=service, client=gov.proctor))],
    )
    async def refund(order_id: int, body: Refund) -> dict[str, float]:
        ran.append(body.amount)
        return {"refunded": body.amount}

    @app.get("/health")
    async def health() -> str:
        return "ok"

    sent = refund_headers(agent, service, amount=7, action="http:POST:/refunds")
    tampered = await post(app, json={"amount": 70}, headers=sent)
    pending = await post(app, json={"amount": 7}, headers=sent)
    assert (tampered.status_code, pending.status_code) == (403, 202)
    location = pending.headers["location"]
    async with client_of(app) as http:
        assert (await http.get(location, headers=sent)).json()["stage"] == "awaiting_approval"
        assert (await http.get("/health")).status_code == 200
    workflow_id = workflow_id_for(signed_request(sent)["request_id"])
    await gov.vote(workflow_id, ALICE, approve=True)
    await gov.wait_for_stage(workflow_id, "awaiting_execution")

    done = await post(app, json={"amount": 7}, headers=sent)
    again = await post(app, json={"amount": 7}, headers=sent)

    assert done.status_code == 200 and done.json() == {"refunded": 7}
    assert again.status_code == 409 and again.json()["detail"]["status"] == "completed"
    assert ran == [7]


def refund_headers(
    agent: AgentKey, service: AgentKey, *, amount: float, **signed: Any
) -> dict[str, str]:
    return headers(
        agent,
        service,
        "POST",
        "/refunds/{order_id}",
        path_params={"order_id": 42},
        body={"amount": amount},
        **signed,
    )


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def post(app: FastAPI, *, json: Any, headers: dict[str, str]) -> httpx.Response:
    async with client_of(app) as http:
        return await http.post("/refunds/42", json=json, headers=headers)


def signed_request(sent: dict[str, str]) -> dict[str, Any]:
    """The signed request a header carries, as JSON (what anyone on the wire can read)."""
    value = sent[REQUEST_HEADER]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return decoded


def encode(request: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(request).encode()).decode().rstrip("=")


def test_a_route_is_named_as_action_names_allow_and_its_query_as_the_url_carries_it() -> None:
    assert route_action("post", "/refunds/{order_id:int}") == "http:POST:/refunds/:order_id"
    assert route_action("GET", "/a/{x}/b/{y}") == "http:GET:/a/:x/b/:y"
    query = {"tag": ["a", "b"], "one": ["x"], "flag": True, "n": 3, "empty": None}
    assert http_params({"id": 42}, query, None) == {
        "path": {"id": "42"},
        "query": {"tag": ["a", "b"], "one": "x", "flag": "true", "n": "3", "empty": ""},
        "body": None,
    }


def test_proctor_guard_is_the_dependency_and_import_proctor_loads_no_web_framework() -> None:
    """`Depends(proctor.guard(...))` as the issue writes it, while an agent's `import proctor`
    stays free of FastAPI and Starlette (checked in a fresh interpreter)."""
    import subprocess
    import sys

    import proctor
    from proctor.integrations import fastapi as adapter

    assert proctor.guard is adapter.guard
    code = (
        "import sys, proctor; "
        "assert not {'fastapi', 'starlette'} & set(sys.modules), 'a web framework was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_two_routes_under_one_action_are_refused() -> None:
    """A request signed for `POST /refunds/{id}` must not run `DELETE /refunds/{id}`: the
    signed action is all that names the route, so a mapping may not share one."""
    from proctor.errors import ConfigurationError
    from proctor.integrations.fastapi.routes import RouteActions

    with pytest.raises(ConfigurationError, match="several routes one action"):
        RouteActions({"POST /refunds/{id}": "refunds", "DELETE /refunds/{id}": "refunds"})


def test_a_body_nested_past_the_parser_is_refused_not_a_crash() -> None:
    from proctor.integrations.fastapi.exchange import BodyError, json_body

    with pytest.raises(BodyError) as refused:
        json_body(b"[" * 100_000)
    assert refused.value.status_code == 415
