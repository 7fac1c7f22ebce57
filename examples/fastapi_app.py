"""An agent-facing refund API whose every call is a governed action of the agent calling it,
and the agent calling it. The API executes with its own key: it never holds the agent's.

Against the stack of `./dev up` (its example policies: `policies/customer-service.yaml`):

    .venv/bin/proctor agent create customer-service-agent --role support \\
        --owner you@example.com --key-out keys/customer-service-agent.pem
    .venv/bin/proctor agent create refund-api --role service \\
        --owner you@example.com --key-out keys/refund-api.pem
    PROCTOR_AGENT_KEY=keys/refund-api.pem .venv/bin/python examples/fastapi_app.py serve &
    PROCTOR_AGENT_KEY=keys/customer-service-agent.pem \\
        .venv/bin/python examples/fastapi_app.py call

The agent reads an order (allowed as `read:orders`: 200), tries to delete the customer
(denied: 403 with the rule and reason) and asks for a refund (escalated: 202 and a status URL).
It polls that URL until an approver decides (`proctor approve <workflow id> --as
alice@example.com`, or in Slack), then sends the very same request again: approved, the refund
runs once (200); rejected, it never runs (403).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from proctor import AgentKey
from proctor.integrations.fastapi import ProctorMiddleware, signed_request_headers

API = "http://127.0.0.1:8000"
SERVICE_ID = "refund-api"
ACTIONS = {
    "GET /orders/{order_id}": "read:orders",
    "DELETE /customers/{customer_id}": "delete:customer",
    "POST /refunds/{order_id}": "refund_requests",
}
"""The example policies name actions their own way; by default a route is
`http:<METHOD>:<template>` (`http:POST:/refunds/:order_id`)."""


def refund_api(service_key: AgentKey) -> FastAPI:
    app = FastAPI(title="Refunds")

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, object]:
        return {"order": order_id, "state": "delivered", "total": 599.99}

    @app.delete("/customers/{customer_id}")
    async def delete_customer(customer_id: int) -> dict[str, object]:
        return {"deleted": customer_id}

    @app.post("/refunds/{order_id}")
    async def refund(order_id: int, body: dict[str, float]) -> dict[str, object]:
        return {"refunded": body["amount"], "order": order_id}

    app.add_middleware(ProctorMiddleware, key=service_key, actions=ACTIONS)
    return app


def signed(agent_key: AgentKey, method: str, template: str, **given: Any) -> dict[str, str]:
    """The agent's signed request for this call, as headers any HTTP client sends."""
    action = ACTIONS[f"{method} {template}"]
    return signed_request_headers(
        agent_key, method, template, executor=SERVICE_ID, action=action, **given
    )


async def call_as_agent(agent_key: AgentKey) -> None:
    read = signed(agent_key, "GET", "/orders/{order_id}", path_params={"order_id": 12345})
    delete = signed(
        agent_key, "DELETE", "/customers/{customer_id}", path_params={"customer_id": 77}
    )
    refund = signed(
        agent_key,
        "POST",
        "/refunds/{order_id}",
        path_params={"order_id": 12345},
        body={"amount": 599.99},
    )
    async with httpx.AsyncClient(base_url=API, timeout=30) as api:
        print("read:", (await api.get("/orders/12345", headers=read)).json())
        print("delete:", (await api.delete("/customers/77", headers=delete)).json())
        answer = await api.post("/refunds/12345", json={"amount": 599.99}, headers=refund)
        print("refund:", answer.status_code, answer.json())
        while answer.status_code == 202:  # escalated: wait for the approvers, then re-send
            await asyncio.sleep(2)
            status = await api.get(answer.headers["location"], headers=refund)
            if status.json()["stage"] != "awaiting_approval":
                answer = await api.post("/refunds/12345", json={"amount": 599.99}, headers=refund)
        print("refund:", answer.status_code, answer.json())


if __name__ == "__main__":
    key = AgentKey.from_env()
    if sys.argv[1:] == ["serve"]:
        uvicorn.run(refund_api(key), host="127.0.0.1", port=8000)
    elif sys.argv[1:] == ["call"]:
        asyncio.run(call_as_agent(key))
    else:
        raise SystemExit("usage: fastapi_app.py serve | call")
