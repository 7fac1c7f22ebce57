"""The PydanticAI adapter: a real `pydantic_ai.Agent` driven by PydanticAI's own `FunctionModel`
(no network, no LLM) calls tools governed by a real worker on Temporal and Postgres, under
tests/e2e/policies/frameworks.yaml (lookups allowed, deletes denied, refunds escalated)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved
from pydantic_ai.toolsets import FunctionToolset

from proctor import AgentKey, Client, InputError
from proctor.integrations.pydantic_ai import (
    ApprovalPending,
    ProctorCapability,
    ProctorToolset,
    allows_deferred_tools,
    tool_call_request_id,
)
from proctor.models import Stage, workflow_id_for
from tests.helpers.agent_process import agent_env, agent_events, kill_while_waiting_then_rejoin
from tests.helpers.harness import Harness

ALICE = "alice@example.com"


@dataclass
class Script:
    """A `FunctionModel`'s script: asks for `calls`, then says "done" once it has read their
    results; keeps every tool result it was shown."""

    calls: list[ToolCallPart]
    shown: list[ToolReturnPart] = field(default_factory=list)

    def respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = [part for part in messages[-1].parts if isinstance(part, ToolReturnPart)]
        if returned:
            self.shown.extend(returned)
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=list(self.calls))

    @property
    def model(self) -> FunctionModel:
        return FunctionModel(self.respond)


@dataclass
class Shop:
    """The agent's tools; each remembers that it ran, so a test proves once or never."""

    ran: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def tools(self) -> list[Callable[..., Any]]:
        def lookup_order(order_id: int) -> dict[str, Any]:
            """Look up an order."""
            self.ran.append(("lookup_order", {"order_id": order_id}))
            return {"order_id": order_id, "status": "shipped"}

        def delete_customer(customer_id: int) -> str:
            """Delete a customer."""
            self.ran.append(("delete_customer", {"customer_id": customer_id}))
            return "deleted"

        def refund_order(order_id: int, amount: float) -> str:
            """Refund an order."""
            self.ran.append(("refund_order", {"order_id": order_id, "amount": amount}))
            return f"refunded {amount} on order {order_id}"

        return [lookup_order, delete_customer, refund_order]


def call(tool: str, call_id: str, **args: Any) -> ToolCallPart:
    return ToolCallPart(tool, args, tool_call_id=call_id)


def governed_agent(
    key: AgentKey, client: Client, script: Script, shop: Shop, *, deferred: bool = False
) -> Agent[None, Any]:
    """The documented one-liner: every tool of the agent governed by the capability."""
    return Agent(
        script.model,
        tools=shop.tools(),
        capabilities=[ProctorCapability(key=key, client=client)],
        output_type=[str, DeferredToolRequests] if deferred else str,
    )


def workflow_of(key: AgentKey, conversation: str, call_id: str) -> str:
    return workflow_id_for(tool_call_request_id(key.agent_id, conversation, call_id))


async def decided(gov: Harness, workflow_id: str) -> None:
    """What an app does before resuming a paused run: follow the request until approvers
    have decided (a vote is counted a moment after it is cast)."""
    await gov.wait_until(
        workflow_id, lambda progress: progress.stage is not Stage.AWAITING_APPROVAL
    )


async def events(gov: Harness, workflow_id: str) -> list[str]:
    return [row.event_type for row in await gov.audit.for_workflow(workflow_id)]


async def test_an_allowed_tool_runs_once_and_the_model_reads_its_result(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop, script = Shop(), Script([call("lookup_order", "call-lookup", order_id=7)])
    toolset = ProctorToolset(
        FunctionToolset(shop.tools()),
        key=key,
        client=gov.proctor,
        action={"lookup_order": "tool:get_order"},  # named for the policy's `tool:get_*`
    )
    agent = Agent(script.model, toolsets=[toolset])

    result = await agent.run("where is order 7?", conversation_id="conv-allowed")

    assert result.output == "done"
    assert shop.ran == [("lookup_order", {"order_id": 7})]
    assert [(part.outcome, part.content) for part in script.shown] == [
        ("success", {"order_id": 7, "status": "shipped"})
    ]
    request_id = tool_call_request_id(key.agent_id, "conv-allowed", "call-lookup")
    outcome = await gov.proctor.outcome(request_id)
    assert (outcome.status.value, outcome.decision.rule_id) == (
        "completed",
        "frameworks:allow:tool:get_*",
    )
    assert outcome.result == {"order_id": 7, "status": "shipped"}


async def test_a_denied_tool_never_runs_and_the_model_reads_why(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop, script = Shop(), Script([call("delete_customer", "call-delete", customer_id=3)])

    result = await governed_agent(key, gov.proctor, script, shop).run("delete customer 3")

    assert result.output == "done"  # the run went on: the model adapted
    assert shop.ran == []
    assert [(part.outcome, part.content) for part in script.shown] == [
        (
            "failed",
            "Proctor denied tool:delete_customer (rule framework-no-deletes): "
            "Agents never delete customer data",
        )
    ]


async def test_an_escalated_tool_waits_and_runs_once_after_approval(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    script = Script([call("refund_order", "call-refund", order_id=7, amount=25.0)])
    agent = governed_agent(key, gov.proctor, script, shop)
    workflow_id = workflow_of(key, "conv-approved", "call-refund")

    run = asyncio.create_task(agent.run("refund order 7", conversation_id="conv-approved"))
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    assert shop.ran == []
    await gov.vote(workflow_id, ALICE, approve=True)
    result = await asyncio.wait_for(run, 30)

    assert result.output == "done"
    assert shop.ran == [("refund_order", {"order_id": 7, "amount": 25.0})]
    assert [(part.outcome, part.content) for part in script.shown] == [
        ("success", "refunded 25.0 on order 7")
    ]
    assert await events(gov, workflow_id) == [
        "decided",
        "escalated",
        "vote",
        "trust_changed",
        "outcome",
    ]


async def test_an_escalated_tool_rejected_never_runs(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    script = Script([call("refund_order", "call-refund", order_id=7, amount=25.0)])
    agent = governed_agent(key, gov.proctor, script, shop)
    workflow_id = workflow_of(key, "conv-rejected", "call-refund")

    run = asyncio.create_task(agent.run("refund order 7", conversation_id="conv-rejected"))
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await gov.vote(workflow_id, ALICE, approve=False, note="not this one")
    result = await asyncio.wait_for(run, 30)

    assert result.output == "done"
    assert shop.ran == []
    [shown] = script.shown
    assert shown.outcome == "failed"
    assert "tool:refund_order" in str(shown.content)
    assert "framework-refunds" in str(shown.content)


async def test_a_deferred_escalation_ends_the_run_and_resumes_once_approved(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    script = Script(
        [
            call("refund_order", "call-refund", order_id=7, amount=25.0),
            call("lookup_order", "call-lookup", order_id=7),
            call("delete_customer", "call-delete", customer_id=3),
        ]
    )
    agent = governed_agent(key, gov.proctor, script, shop, deferred=True)

    paused = await agent.run("refund order 7, delete customer 3")

    assert isinstance(paused.output, DeferredToolRequests)
    assert [c.tool_call_id for c in paused.output.approvals] == ["call-refund"]
    pending = ApprovalPending.of(paused.output, "call-refund")
    assert pending is not None
    assert pending.workflow_id == workflow_of(key, paused.conversation_id or "", "call-refund")
    assert (pending.tool, pending.tool_call_id, pending.action) == (
        "refund_order",
        "call-refund",
        "tool:refund_order",
    )
    assert (pending.rule_id, pending.reason, pending.approvers, pending.quorum) == (
        "framework-refunds",
        "Refunds move money",
        (ALICE,),
        1,
    )
    assert pending.deadline is not None and pending.approved_by == ()
    assert (await gov.proctor.progress(pending.workflow_id)).stage.value == "awaiting_approval"
    assert shop.ran == [("lookup_order", {"order_id": 7})]  # the allowed call did not wait

    await gov.vote(pending.workflow_id, ALICE, approve=True)
    await decided(gov, pending.workflow_id)
    resumed = await agent.run(
        message_history=paused.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={"call-refund": True}),
    )

    assert resumed.output == "done"
    assert shop.ran[1:] == [("refund_order", {"order_id": 7, "amount": 25.0})]
    assert [(p.tool_call_id, p.outcome) for p in script.shown] == [
        ("call-refund", "success"),
        ("call-lookup", "success"),
        ("call-delete", "failed"),
    ]
    assert "framework-no-deletes" in str(script.shown[2].content)
    assert (await events(gov, pending.workflow_id)).count("decided") == 1


async def test_a_local_approval_is_not_proctors(gov: Harness) -> None:
    """The app says yes while Proctor's approvers have not: the run pauses again; once they
    reject, the app's yes still runs nothing and the model reads the rejection."""
    key = await gov.new_agent(role="framework")
    shop = Shop()
    script = Script([call("refund_order", "call-refund", order_id=7, amount=25.0)])
    agent = governed_agent(key, gov.proctor, script, shop, deferred=True)
    approve_locally = DeferredToolResults(approvals={"call-refund": True})

    paused = await agent.run("refund order 7")
    again = await agent.run(
        message_history=paused.all_messages(), deferred_tool_results=approve_locally
    )

    assert isinstance(again.output, DeferredToolRequests)
    assert [c.tool_call_id for c in again.output.approvals] == ["call-refund"]
    assert shop.ran == []
    pending = ApprovalPending.of(again.output, "call-refund")
    assert pending is not None
    await gov.vote(pending.workflow_id, ALICE, approve=False)
    await decided(gov, pending.workflow_id)
    ended = await agent.run(
        message_history=again.all_messages(), deferred_tool_results=approve_locally
    )

    assert ended.output == "done"
    assert shop.ran == []
    [shown] = script.shown
    assert shown.outcome == "failed" and "framework-refunds" in str(shown.content)


async def test_a_local_denial_never_runs_the_tool(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    script = Script([call("refund_order", "call-refund", order_id=7, amount=25.0)])
    agent = governed_agent(key, gov.proctor, script, shop, deferred=True)

    paused = await agent.run("refund order 7")
    assert isinstance(paused.output, DeferredToolRequests)
    pending = ApprovalPending.of(paused.output, "call-refund")
    assert pending is not None
    await gov.vote(pending.workflow_id, ALICE, approve=True)  # Proctor's yes is not enough
    await decided(gov, pending.workflow_id)
    ended = await agent.run(
        message_history=paused.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={"call-refund": False}),
    )

    assert ended.output == "done"
    assert shop.ran == []
    assert [part.outcome for part in script.shown] == ["denied"]


async def test_an_approval_runs_only_the_arguments_the_approvers_saw(gov: Harness) -> None:
    """After alice approved a 25.0 refund, neither the app's `override_args` nor a message
    history edited to ask for 2500.0 runs anything (the resumed run stops with a one-line
    error); the history as it was still runs the approved refund, once."""
    key = await gov.new_agent(role="framework")
    shop = Shop()
    script = Script([call("refund_order", "call-refund", order_id=7, amount=25.0)])
    agent = governed_agent(key, gov.proctor, script, shop, deferred=True)
    paused = await agent.run("refund order 7")
    assert isinstance(paused.output, DeferredToolRequests)
    pending = ApprovalPending.of(paused.output, "call-refund")
    assert pending is not None
    await gov.vote(pending.workflow_id, ALICE, approve=True)
    await decided(gov, pending.workflow_id)
    history = paused.all_messages()
    bigger = {"order_id": 7, "amount": 2500.0}
    approve = DeferredToolResults(approvals={"call-refund": True})
    override = DeferredToolResults(approvals={"call-refund": ToolApproved(override_args=bigger)})

    with pytest.raises(InputError, match="an approval cannot change what the approvers saw"):
        await agent.run(message_history=history, deferred_tool_results=override)
    with pytest.raises(InputError, match="an approval cannot change what the approvers saw"):
        await agent.run(message_history=edited(history, bigger), deferred_tool_results=approve)
    assert shop.ran == []

    resumed = await agent.run(message_history=history, deferred_tool_results=approve)
    assert resumed.output == "done"
    assert shop.ran == [("refund_order", {"order_id": 7, "amount": 25.0})]


def edited(history: list[ModelMessage], args: dict[str, Any]) -> list[ModelMessage]:
    """The history with every tool call's arguments replaced, as whoever stores it could."""
    return [
        dataclasses.replace(
            message,
            parts=[
                call(part.tool_name, part.tool_call_id, **args)
                if isinstance(part, ToolCallPart)
                else part
                for part in message.parts
            ],
        )
        if isinstance(message, ModelResponse)
        else message
        for message in history
    ]


async def test_a_tool_wrapped_twice_is_governed_once(gov: Harness) -> None:
    """A capability over an agent whose toolset is governed already: the outer wrapper asks,
    the inner one lets the call through (asking again would wait on the outer's request)."""
    key = await gov.new_agent(role="framework")
    shop, script = Shop(), Script([call("lookup_order", "call-lookup", order_id=7)])
    agent = Agent(
        script.model,
        toolsets=[ProctorToolset(FunctionToolset(shop.tools()), key=key, client=gov.proctor)],
        capabilities=[ProctorCapability(key=key, client=gov.proctor)],
    )

    result = await asyncio.wait_for(agent.run("order 7?", conversation_id="conv-twice"), 30)

    assert result.output == "done"
    assert shop.ran == [("lookup_order", {"order_id": 7})]
    assert await events(gov, workflow_of(key, "conv-twice", "call-lookup")) == [
        "decided",
        "trust_changed",
        "outcome",
    ]


# --- a real agent process, killed while it waits --------------------------------------------

AGENT_SCRIPT = '''
import asyncio, sys
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from proctor import AgentKey
from proctor.integrations.pydantic_ai import ProctorCapability

runs, conversation = Path(sys.argv[1]), sys.argv[2]


def refund_order(order_id: int, amount: float) -> str:
    """Refund an order."""
    with runs.open("a") as file:
        file.write(f"refund_order {order_id} {amount}\\n")
    return "refunded"


def respond(messages, info):
    returned = [part for part in messages[-1].parts if isinstance(part, ToolReturnPart)]
    if returned:
        return ModelResponse(parts=[TextPart(f"tool said: {returned[0].content}")])
    refund = ToolCallPart("refund_order", {"order_id": 7, "amount": 5.0}, tool_call_id="call-k")
    return ModelResponse(parts=[refund])


async def main() -> None:
    governed = ProctorCapability(key=AgentKey.from_env())
    agent = Agent(FunctionModel(respond), tools=[refund_order], capabilities=[governed])
    print("ready", flush=True)
    sys.stdin.readline()  # the test says when to run
    result = await agent.run("refund order 7", conversation_id=conversation)
    print(result.output, flush=True)


asyncio.run(main())
'''
"""An agent script: a PydanticAI agent governed by `ProctorCapability`, its key from the
environment and its client connected on first use, asking for one escalated refund in the
conversation named by its second argument; every run of the tool is appended to the file
named by its first."""


async def test_an_agent_killed_while_waiting_rejoins_its_request_and_the_tool_runs_once(
    gov: Harness, tmp_path: Path
) -> None:
    """The first process dies (SIGKILL) while its refund waits for approval; a second process
    runs the same conversation: it joins the same request (one workflow, decided once), and
    after alice approves the tool runs once, in the second process. Both start (imports done)
    before the first is killed, to keep the test fast."""
    key = await gov.new_agent(role="framework")
    runs = tmp_path / "runs.txt"
    env = agent_env(gov.proctor.temporal, gov.task_queue, key, tmp_path)
    workflow_id = workflow_of(key, "conv-killed", "call-k")
    said = await kill_while_waiting_then_rejoin(
        gov, AGENT_SCRIPT, env, tmp_path, (str(runs), "conv-killed"), workflow_id
    )
    assert said == "tool said: refunded"
    assert runs.read_text().splitlines() == ["refund_order 7 5.0"]
    assert await agent_events(gov, key.agent_id) == [
        (workflow_id, event)
        for event in ("decided", "escalated", "vote", "trust_changed", "outcome")
    ]


def test_deferring_follows_the_output_types() -> None:
    assert allows_deferred_tools([str, DeferredToolRequests])
    assert allows_deferred_tools(str | DeferredToolRequests)
    assert allows_deferred_tools(DeferredToolRequests)
    assert not allows_deferred_tools(str)
    assert not allows_deferred_tools([str, int])


def test_a_missing_key_is_a_one_line_error() -> None:
    with pytest.raises(InputError, match="key= must be the agent's AgentKey"):
        ProctorCapability()
    with pytest.raises(InputError, match="key= must be the agent's AgentKey"):
        ProctorToolset(FunctionToolset([]), key="agent-1")  # type: ignore[arg-type]
