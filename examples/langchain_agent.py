"""A LangChain v1 agent whose every tool call Proctor governs. Runs offline: the model is
LangChain's own fake chat model with a fixed script (no LLM, no network, no API key).

Against the stack of `./dev up` (its example policies: `policies/customer-service.yaml`):

    .venv/bin/proctor agent create customer-service-agent --role support \\
        --owner you@example.com --key-out keys/customer-service-agent.pem
    PROCTOR_AGENT_KEY=keys/customer-service-agent.pem \\
        .venv/bin/python examples/langchain_agent.py [THREAD_ID]

The model asks for three tools at once: an order lookup (allowed as `read:orders`), deleting
the customer (denied: the model is told the rule and reason) and a refund (escalated: the run
pauses until an approver decides in Proctor, e.g. `proctor approve <workflow id> --as
alice@example.com`, or in Slack). Pressing Enter resumes the run, which asks Proctor again: the
resume itself approves nothing. Run it again with the same THREAD_ID, even after killing it
mid-wait: it joins the requests it made instead of asking twice.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolCall
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from proctor import AgentKey
from proctor.integrations.langchain import ApprovalPending, ProctorMiddleware

ACTIONS = {
    "lookup_order": "read:orders",
    "delete_customer": "delete:customer",
    "refund_order": "refund_requests",
}
"""The example policies name actions their own way; by default a tool is `tool:<its name>`."""


@tool
def lookup_order(order_id: int) -> str:
    """Look an order up."""
    return f"order {order_id}: delivered, 599.99 EUR"


@tool
def delete_customer(customer_id: int) -> str:
    """Delete a customer and their data."""
    return f"customer {customer_id} deleted"


@tool
def refund_order(order_id: int, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount} EUR on order {order_id}"


class ScriptedModel(GenericFakeChatModel):
    """The fake model, accepting the tools `create_agent` binds (its script ignores them)."""

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self


def script() -> ScriptedModel:
    calls = [
        ToolCall(name="lookup_order", args={"order_id": 12345}, id="call-lookup"),
        ToolCall(name="delete_customer", args={"customer_id": 77}, id="call-delete"),
        ToolCall(name="refund_order", args={"order_id": 12345, "amount": 599.99}, id="call-refund"),
    ]
    turns: list[AIMessage | str] = [AIMessage(content="", tool_calls=calls), "All handled."]
    return ScriptedModel(messages=iter(turns))


async def main(thread_id: str) -> None:
    middleware = ProctorMiddleware(key=AgentKey.from_env(), action=ACTIONS, interrupt=True)
    agent = create_agent(
        script(),
        [lookup_order, delete_customer, refund_order],
        middleware=[middleware],
        checkpointer=InMemorySaver(),  # interrupt() needs one
    )
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    result = await agent.ainvoke({"messages": [HumanMessage("Refund order 12345")]}, config)
    while pauses := result.get("__interrupt__"):
        for pause in pauses:
            pending = ApprovalPending.model_validate(pause.value)
            print(f"paused: {pending.action} ({pending.reason}) waits for {pending.approvers}")
            print(f"  proctor approve {pending.workflow_id} --as {pending.approvers[0]}")
        await asyncio.to_thread(input, "press Enter once decided ")
        result = await agent.ainvoke(Command(resume={p.id: "asked" for p in pauses}), config)
    for message in result["messages"]:
        print(f"{message.type}: {message.content}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "example-thread"))
