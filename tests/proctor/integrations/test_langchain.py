"""The LangChain v1 / LangGraph adapter: real `create_agent` agents and `ToolNode`s, driven by
LangChain's own fake chat model (no network, no LLM), call tools governed by a real worker on
Temporal and Postgres, under tests/e2e/policies/frameworks.yaml (lookups allowed, deletes
denied, refunds escalated to alice)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import InputAgentState
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command
from pydantic import Field

from proctor import AgentKey, InputError
from proctor.integrations import derive_request_id
from proctor.integrations.langchain import ApprovalPending, ProctorMiddleware, govern
from proctor.models import workflow_id_for
from tests.helpers.agent_process import agent_env, agent_events, kill_while_waiting_then_rejoin
from tests.helpers.harness import Harness

ALICE = "alice@example.com"
DENIED = (
    "Proctor denied tool:delete_customer (rule framework-no-deletes): "
    "Agents never delete customer data"
)


class ScriptedModel(GenericFakeChatModel):
    """LangChain's fake chat model, answering with its script's messages in turn; it accepts
    tools (create_agent binds them) and keeps every conversation it was shown."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)

    def tool_results(self) -> list[ToolMessage]:
        """The tool messages of the last conversation the model was shown."""
        return [m for m in self.seen[-1] if isinstance(m, ToolMessage)]


def scripted(*calls: ToolCall) -> ScriptedModel:
    """A model that asks for `calls` at once, then says it is done."""
    turns: list[AIMessage | str] = [AIMessage(content="", tool_calls=list(calls)), "done"]
    return ScriptedModel(messages=iter(turns))


def call(name: str, call_id: str = "call-1", **args: Any) -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


class Shop:
    """The agent's tools; each run is recorded, so a test proves a tool ran once or never."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []

    def tools(self) -> list[BaseTool]:
        runs = self.runs

        @tool
        def lookup_order(order_id: int) -> str:
            """Look an order up."""
            runs.append(("lookup_order", {"order_id": order_id}))
            return f"order {order_id}: shipped"

        @tool
        def delete_customer(customer_id: int) -> str:
            """Delete a customer."""
            runs.append(("delete_customer", {"customer_id": customer_id}))
            return "deleted"

        @tool
        def refund_customer(order_id: int, amount: float) -> str:
            """Refund an order."""
            runs.append(("refund_customer", {"order_id": order_id, "amount": amount}))
            return f"refunded {amount} on order {order_id}"

        return [lookup_order, delete_customer, refund_customer]


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def workflow_of(key: AgentKey, thread_id: str, call_id: str = "call-1") -> str:
    return workflow_id_for(derive_request_id(key.agent_id, thread_id, call_id))


def asks(text: str = "go") -> InputAgentState:
    return {"messages": [HumanMessage(text)]}


async def events(gov: Harness, workflow_id: str) -> list[str]:
    return [row.event_type for row in await gov.audit.for_workflow(workflow_id)]


# --- ProctorMiddleware ------------------------------------------------------------------------


async def test_an_allowed_tool_call_runs_once_with_the_models_arguments(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop, model = Shop(), scripted(call("lookup_order", order_id=7))
    agent = create_agent(
        model, shop.tools(), middleware=[ProctorMiddleware(key=key, client=gov.proctor)]
    )

    await agent.ainvoke(asks(), thread("t-allowed"))

    assert shop.runs == [("lookup_order", {"order_id": 7})]
    (answer,) = model.tool_results()
    assert (answer.content, answer.status, answer.tool_call_id) == (
        "order 7: shipped",
        "success",
        "call-1",
    )
    workflow_id = workflow_of(key, "t-allowed")
    assert await events(gov, workflow_id) == ["decided", "trust_changed", "outcome"]
    (decided,) = await gov.audit.for_workflow(workflow_id, ["decided"])
    assert decided.action == "tool:lookup_order"


async def test_a_denied_tool_call_tells_the_model_why_and_never_runs(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop, model = Shop(), scripted(call("delete_customer", "call-del", customer_id=3))
    agent = create_agent(
        model, shop.tools(), middleware=[ProctorMiddleware(key=key, client=gov.proctor)]
    )

    result = await agent.ainvoke(asks(), thread("t-denied"))

    assert shop.runs == []
    (answer,) = model.tool_results()
    assert (answer.content, answer.status, answer.tool_call_id, answer.name) == (
        DENIED,
        "error",
        "call-del",
        "delete_customer",
    )
    assert result["messages"][-1].content == "done"  # the run went on: the model adapted


async def test_an_escalated_tool_call_runs_once_after_approval(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop, model = Shop(), scripted(call("refund_customer", order_id=7, amount=5.0))
    agent = create_agent(
        model, shop.tools(), middleware=[ProctorMiddleware(key=key, client=gov.proctor)]
    )
    run = asyncio.create_task(agent.ainvoke(asks(), thread("t-approved")))
    workflow_id = workflow_of(key, "t-approved")

    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    assert shop.runs == []
    await gov.vote(workflow_id, ALICE, approve=True)
    await asyncio.wait_for(run, 30)

    assert shop.runs == [("refund_customer", {"order_id": 7, "amount": 5.0})]
    (answer,) = model.tool_results()
    assert (answer.content, answer.status) == ("refunded 5.0 on order 7", "success")


async def test_an_escalated_tool_call_rejected_never_runs_and_the_model_is_told(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop, model = Shop(), scripted(call("refund_customer", order_id=8, amount=50.0))
    agent = create_agent(
        model, shop.tools(), middleware=[ProctorMiddleware(key=key, client=gov.proctor)]
    )
    run = asyncio.create_task(agent.ainvoke(asks(), thread("t-rejected")))
    workflow_id = workflow_of(key, "t-rejected")

    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await gov.vote(workflow_id, ALICE, approve=False, note="not this one")
    await asyncio.wait_for(run, 30)

    assert shop.runs == []
    (answer,) = model.tool_results()
    assert answer.status == "error"
    assert str(answer.content).startswith(
        "Proctor rejected tool:refund_customer (rule framework-refunds): "
    )


async def test_interrupt_mode_pauses_until_proctor_approves_whatever_the_resume_value(
    gov: Harness,
) -> None:
    """The run pauses with the pending approval; a resume before anyone approved (its value
    claiming approval) pauses again; after alice approves in Proctor the tool runs once."""
    key = await gov.new_agent(role="framework")
    shop, model = Shop(), scripted(call("refund_customer", "call-r", order_id=9, amount=20.0))
    agent = create_agent(
        model,
        shop.tools(),
        middleware=[ProctorMiddleware(key=key, client=gov.proctor, interrupt=True)],
        checkpointer=InMemorySaver(),
    )
    config = thread("t-interrupt")
    workflow_id = workflow_of(key, "t-interrupt", "call-r")

    paused = await agent.ainvoke(asks(), config)

    (pause,) = paused["__interrupt__"]
    pending = ApprovalPending.model_validate(pause.value)
    assert (pending.workflow_id, pending.action, pending.tool, pending.tool_call_id) == (
        workflow_id,
        "tool:refund_customer",
        "refund_customer",
        "call-r",
    )
    assert (pending.rule_id, pending.reason, pending.approvers) == (
        "framework-refunds",
        "Refunds move money",
        [ALICE],
    )
    assert shop.runs == []

    still_paused = await agent.ainvoke(Command(resume={"approved": True}), config)
    assert ApprovalPending.model_validate(still_paused["__interrupt__"][0].value) == pending
    assert shop.runs == []

    await gov.vote(workflow_id, ALICE, approve=True)
    finished = await agent.ainvoke(Command(resume="approved in Proctor"), config)

    assert "__interrupt__" not in finished
    assert shop.runs == [("refund_customer", {"order_id": 9, "amount": 20.0})]
    assert finished["messages"][-1].content == "done"
    assert await events(gov, workflow_id) == [
        "decided",
        "escalated",
        "vote",
        "trust_changed",
        "outcome",
    ]


async def test_a_rerun_of_a_thread_joins_its_request_and_never_runs_the_tool_twice(
    gov: Harness,
) -> None:
    """The same thread and tool call again (a run restarted after a crash): Proctor answers
    from the first run's record; the tool does not run again."""
    key = await gov.new_agent(role="framework")
    shop = Shop()
    middleware = ProctorMiddleware(key=key, client=gov.proctor)
    for _ in range(2):
        model = scripted(call("lookup_order", "call-again", order_id=11))
        await create_agent(model, shop.tools(), middleware=[middleware]).ainvoke(
            asks(), thread("t-again")
        )
        (answer,) = model.tool_results()
        assert (answer.content, answer.status) == ("order 11: shipped", "success")

    assert shop.runs == [("lookup_order", {"order_id": 11})]
    assert await events(gov, workflow_of(key, "t-again", "call-again")) == [
        "decided",
        "trust_changed",
        "outcome",
    ]


async def test_an_action_mapping_renames_what_is_governed(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    runs: list[int] = []

    @tool
    def find_order(order_id: int) -> str:
        """Find an order."""
        runs.append(order_id)
        return "found"

    model = scripted(call("find_order", order_id=5))
    middleware = ProctorMiddleware(
        key=key, client=gov.proctor, action={"find_order": "tool:get_order"}
    )
    await create_agent(model, [find_order], middleware=[middleware]).ainvoke(
        asks(), thread("t-map")
    )

    assert runs == [5]  # tool:find_order would fall to the default deny
    (decided,) = await gov.audit.for_workflow(workflow_of(key, "t-map"), ["decided"])
    assert decided.action == "tool:get_order"


async def test_the_sync_api_governs_from_a_thread_and_pauses_with_interrupt(
    gov: Harness,
) -> None:
    """`agent.invoke` (wrap_tool_call, blocking calls into Proctor): allowed, denied and an
    escalation paused and resumed, in one run."""
    key = await gov.new_agent(role="framework")
    shop = Shop()
    model = scripted(
        call("lookup_order", "call-a", order_id=1),
        call("delete_customer", "call-b", customer_id=2),
        call("refund_customer", "call-c", order_id=3, amount=4.0),
    )
    agent = create_agent(
        model,
        shop.tools(),
        middleware=[ProctorMiddleware(key=key, client=gov.proctor, interrupt=True)],
        checkpointer=InMemorySaver(),
    )
    config = thread("t-sync")

    paused = await asyncio.to_thread(lambda: agent.invoke(asks(), config))
    assert [p.value["tool_call_id"] for p in paused["__interrupt__"]] == ["call-c"]
    assert [name for name, _ in shop.runs] == ["lookup_order"]

    await gov.vote(workflow_of(key, "t-sync", "call-c"), ALICE, approve=True)
    await asyncio.to_thread(lambda: agent.invoke(Command(resume=True), config))

    assert sorted(name for name, _ in shop.runs) == ["lookup_order", "refund_customer"]
    answers = {m.tool_call_id: (m.status, m.content) for m in model.tool_results()}
    assert answers == {
        "call-a": ("success", "order 1: shipped"),
        "call-b": ("error", DENIED),
        "call-c": ("success", "refunded 4.0 on order 3"),
    }


# --- govern(tool) -----------------------------------------------------------------------------


async def test_governed_tools_in_a_tool_node_run_if_allowed_and_answer_a_denial(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    graph = StateGraph(MessagesState)
    graph.add_node(
        "tools", ToolNode([govern(t, key=key, client=gov.proctor) for t in shop.tools()])
    )
    graph.add_edge(START, "tools")
    asked = AIMessage(
        content="",
        tool_calls=[
            call("lookup_order", "call-1", order_id=4),
            call("delete_customer", "call-2", customer_id=4),
        ],
    )

    result = await graph.compile().ainvoke({"messages": [asked]}, thread("t-node"))

    answers = {
        m.tool_call_id: (m.status, m.content, m.name)
        for m in result["messages"]
        if isinstance(m, ToolMessage)
    }
    assert answers == {
        "call-1": ("success", "order 4: shipped", "lookup_order"),
        "call-2": ("error", DENIED, "delete_customer"),
    }
    assert shop.runs == [("lookup_order", {"order_id": 4})]
    assert await events(gov, workflow_of(key, "t-node", "call-1")) == [
        "decided",
        "trust_changed",
        "outcome",
    ]


async def test_a_governed_tool_called_directly_keeps_its_interface(gov: Harness) -> None:
    """Older agents call tools directly, sync or async, without a tool call: the same name,
    description and arguments; an allowed run returns the tool's output, a denial its verdict
    (the tool handles its own ToolException)."""
    key = await gov.new_agent(role="framework")
    shop = Shop()
    lookup, delete, _refund = shop.tools()
    governed_lookup = govern(lookup, key=key, client=gov.proctor)
    governed_delete = govern(delete, key=key, client=gov.proctor)

    assert (governed_lookup.name, governed_lookup.description) == (lookup.name, lookup.description)
    assert governed_lookup.args == lookup.args
    assert await governed_lookup.ainvoke({"order_id": 12}) == "order 12: shipped"
    assert await asyncio.to_thread(governed_delete.invoke, {"customer_id": 12}) == DENIED
    assert shop.runs == [("lookup_order", {"order_id": 12})]


def test_arguments_of_the_wrong_kind_are_refused_in_one_line() -> None:
    key = AgentKey.generate("agent-args")
    with pytest.raises(InputError, match="action= takes a function or a mapping of tool names"):
        ProctorMiddleware(key=key, action=cast(Any, "refund_requests"))
    with pytest.raises(TypeError, match="govern\\(\\) takes a LangChain BaseTool, not function"):
        govern(cast(Any, lambda: None), key=key)


# --- a real agent process, killed while it waits --------------------------------------------

AGENT_SCRIPT = '''
import asyncio, sys
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from proctor import AgentKey, InputError
from proctor.integrations.langchain import ProctorMiddleware

runs, thread_id = Path(sys.argv[1]), sys.argv[2]


class ScriptedModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


@tool
def refund_customer(order_id: int, amount: float) -> str:
    """Refund an order."""
    with runs.open("a") as file:
        file.write(f"refund_customer {order_id} {amount}\\n")
    return "refunded"


async def main() -> None:
    refund = {"name": "refund_customer", "args": {"order_id": 7, "amount": 5.0}, "id": "call-k"}
    model = ScriptedModel(messages=iter([AIMessage(content="", tool_calls=[refund]), "done"]))
    middleware = ProctorMiddleware(key=AgentKey.from_env())
    agent = create_agent(model, [refund_customer], middleware=[middleware])
    print("ready", flush=True)
    sys.stdin.readline()  # the test says when to run
    config = {"configurable": {"thread_id": thread_id}}
    result = await agent.ainvoke({"messages": [("user", "refund order 7")]}, config)
    print("tool said:", result["messages"][-2].content, flush=True)


asyncio.run(main())
'''
"""An agent script: a `create_agent` agent governed by `ProctorMiddleware`, its key from the
environment, asking for one escalated refund in the thread named by its second argument; every
run of the tool is appended to the file named by its first."""


async def test_an_agent_killed_while_waiting_rejoins_its_request_and_the_tool_runs_once(
    gov: Harness, tmp_path: Path
) -> None:
    """The first process dies (SIGKILL) while its refund waits for approval; a second process
    runs the same thread: it joins the same request (one workflow, decided once), and after
    alice approves the tool runs once, in the second process. The second process is started
    (imports done) before the first is killed, and runs its agent only after, to keep the
    test fast."""
    key = await gov.new_agent(role="framework")
    runs = tmp_path / "runs.txt"
    env = agent_env(gov.proctor.temporal, gov.task_queue, key, tmp_path)
    workflow_id = workflow_of(key, "t-kill", "call-k")
    said = await kill_while_waiting_then_rejoin(
        gov, AGENT_SCRIPT, env, tmp_path, (str(runs), "t-kill"), workflow_id
    )
    assert said == "tool said: refunded"
    assert runs.read_text().splitlines() == ["refund_customer 7 5.0"]
    assert await agent_events(gov, key.agent_id) == [
        (workflow_id, event)
        for event in ("decided", "escalated", "vote", "trust_changed", "outcome")
    ]
