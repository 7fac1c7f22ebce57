"""An OpenAI Agents SDK agent whose every tool call Proctor governs. Runs offline: the model is
the SDK's own `ScriptedModel` with a fixed script (no LLM, no network, no API key).

Against the stack of `./dev up` (its example policies: `policies/customer-service.yaml`):

    .venv/bin/proctor agent create customer-service-agent --role support \\
        --owner you@example.com --key-out keys/customer-service-agent.pem
    PROCTOR_AGENT_KEY=keys/customer-service-agent.pem \\
        .venv/bin/python examples/openai_agents_agent.py [RUN_ID]

The model asks for three tools at once: an order lookup (allowed as `read:orders`), deleting
the customer (denied: the model is told the rule and reason) and a refund (escalated: the run
stops with the call in `result.interruptions` until an approver decides in Proctor, e.g.
`proctor approve <workflow id> --as alice@example.com`, or in Slack). Pressing Enter approves
the interruption locally and resumes the run; the governed tool asks Proctor again and runs
only if Proctor approved. Run it again with the same RUN_ID (the tool call ids), even after
killing it mid-wait: it joins the requests it made instead of asking twice.
"""

from __future__ import annotations

import asyncio
import sys

from agents import Agent, Runner, Tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from proctor import AgentKey, Client
from proctor.integrations.openai_agents import governed_tool, interruption_progress

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


def script(run_id: str) -> ScriptedModel:
    calls = [
        function_call("lookup_order", {"order_id": 12345}, call_id=f"{run_id}-lookup"),
        function_call("delete_customer", {"customer_id": 77}, call_id=f"{run_id}-delete"),
        function_call(
            "refund_order", {"order_id": 12345, "amount": 599.99}, call_id=f"{run_id}-refund"
        ),
    ]
    return ScriptedModel([calls, [assistant_message("All handled.")]])


async def main(run_id: str) -> None:
    set_tracing_disabled(True)  # the SDK would export traces to OpenAI otherwise
    key = AgentKey.from_env()
    proctor = await Client.connect()  # one connection for every tool
    tools: list[Tool] = [
        governed_tool(fn, key=key, client=proctor, action=ACTIONS[fn.__name__], interrupt=True)
        for fn in (lookup_order, delete_customer, refund_order)
    ]
    model = script(run_id)
    agent = Agent(name="customer-service", model=model, tools=tools)
    result = await Runner.run(agent, "Refund order 12345")
    while result.interruptions:
        state = result.to_state()
        for item in result.interruptions:
            progress = await interruption_progress(item, key=key, client=proctor)
            if progress.pending is not None:
                card = progress.pending.card
                print(f"paused: {item.name} waits for {', '.join(card.approvers)}")
                print(f"  proctor approve {card.workflow_id} --as {card.approvers[0]}")
            state.approve(item)  # lets the run resume; Proctor still decides
        await asyncio.to_thread(input, "press Enter once decided ")
        result = await Runner.run(agent, state)
    last = model.last_call
    for item in last.input if last is not None and isinstance(last.input, list) else []:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            print(f"{item['call_id']}: {item['output']}")
    print(f"assistant: {result.final_output}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "example-run"))
