"""A PydanticAI agent whose every tool call Proctor governs. Runs offline: the model is
PydanticAI's own `FunctionModel` with a fixed script (no LLM, no network, no API key).

Against the stack of `./dev up` (its example policies: `policies/customer-service.yaml`):

    .venv/bin/proctor agent create customer-service-agent --role support \\
        --owner you@example.com --key-out keys/customer-service-agent.pem
    PROCTOR_AGENT_KEY=keys/customer-service-agent.pem \\
        .venv/bin/python examples/pydantic_ai_agent.py [CONVERSATION_ID]

The model asks for three tools at once: an order lookup (allowed as `read:orders`), deleting
the customer (denied: the model is told the rule and reason, and carries on) and a refund
(escalated: the run ends with `DeferredToolRequests` until an approver decides in Proctor,
e.g. `proctor approve <workflow id> --as alice@example.com`, or in Slack). Pressing Enter
resumes the run with the app's approval, which Proctor does not take for its own: the refund
runs only if the approver said yes. Run it again with the same CONVERSATION_ID, even after
killing it mid-wait: it joins the requests it made instead of asking twice.
"""

from __future__ import annotations

import asyncio
import sys

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

from proctor import AgentKey
from proctor.integrations.pydantic_ai import ApprovalPending, ProctorCapability

ACTIONS = {
    "lookup_order": "read:orders",
    "delete_customer": "delete:customer",
    "refund_order": "refund_requests",
}
"""The example policies name actions their own way; by default a tool is `tool:<its name>`."""


def lookup_order(order_id: int) -> str:
    """Look an order up."""
    return f"order {order_id}: delivered, 599.99 EUR"


def delete_customer(customer_id: int) -> str:
    """Delete a customer and their data."""
    return f"customer {customer_id} deleted"


def refund_order(order_id: int, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount} EUR on order {order_id}"


def scripted_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Asks for the three tools, then sums up what it was told."""
    told = [part for part in messages[-1].parts if isinstance(part, ToolReturnPart)]
    if told:
        return ModelResponse(parts=[TextPart("\n".join(f"{p.outcome}: {p.content}" for p in told))])
    return ModelResponse(
        parts=[
            ToolCallPart("lookup_order", {"order_id": 12345}, tool_call_id="call-lookup"),
            ToolCallPart("delete_customer", {"customer_id": 77}, tool_call_id="call-delete"),
            ToolCallPart(
                "refund_order", {"order_id": 12345, "amount": 599.99}, tool_call_id="call-refund"
            ),
        ]
    )


async def main(conversation_id: str) -> None:
    agent = Agent(
        FunctionModel(scripted_model),
        tools=[lookup_order, delete_customer, refund_order],
        capabilities=[ProctorCapability(key=AgentKey.from_env(), action=ACTIONS)],
        output_type=[str, DeferredToolRequests],  # escalations pause the run
    )
    result = await agent.run("Refund order 12345", conversation_id=conversation_id)
    while isinstance(paused := result.output, DeferredToolRequests):
        for call in paused.approvals:
            pending = ApprovalPending.of(paused, call.tool_call_id)
            assert pending is not None, f"{call.tool_name} was not deferred by Proctor"
            print(f"paused: {pending.action} ({pending.reason}) waits for {pending.approvers}")
            print(f"  proctor approve {pending.workflow_id} --as {pending.approvers[0]}")
        await asyncio.to_thread(input, "press Enter once decided ")
        approved = DeferredToolResults(approvals={c.tool_call_id: True for c in paused.approvals})
        result = await agent.run(  # Proctor re-checks: the app's True approves nothing itself
            message_history=result.all_messages(), deferred_tool_results=approved
        )
    print(result.output)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "example-conversation"))
