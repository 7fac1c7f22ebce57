"""The OpenAI Agents SDK adapter: a real `Agent` run by the real `Runner`, its model the SDK's
own `ScriptedModel` (no network, no LLM), governed by a real worker on Temporal and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    RunConfig,
    RunContextWrapper,
    Runner,
    default_tool_error_function,
    function_tool,
    set_tracing_disabled,
)
from agents.exceptions import UserError
from agents.testing import ScriptedModel, assistant_message, function_call
from temporalio import activity, workflow
from temporalio.client import Client as TemporalClient
from temporalio.common import RetryPolicy
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.openai_agents.testing import TestModelProvider
from temporalio.openai_agents.workflow import activity_as_tool
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from proctor import ActionStatus, AgentKey, Client
from proctor.integrations import derive_request_id
from proctor.integrations.openai_agents import (
    ProctorGuardrail,
    call_request_id,
    govern,
    governed_activity,
    governed_tool,
    interruption_progress,
    proctor_tool,
)
from proctor.models import Stage, workflow_id_for
from tests.helpers.agent_process import (
    agent_env,
    agent_events,
    kill_while_waiting_then_rejoin,
    permission_asks,
)
from tests.helpers.harness import Harness, eventually
from tests.helpers.openai_agents import call_id, tool_output

set_tracing_disabled(True)  # no traces exported: nothing leaves the machine


class Shop:
    """The agent's tools, remembering every call that really ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []

    def lookup_order(self, order_id: int) -> str:
        """Look up an order's status."""
        self.ran.append(("lookup_order", {"order_id": order_id}))
        return f"order {order_id}: shipped"

    async def refund_order(self, order_id: int, amount: float) -> str:
        """Refund part of an order."""
        self.ran.append(("refund_order", {"order_id": order_id, "amount": amount}))
        return f"refunded {amount} on order {order_id}"

    def delete_customer(self, customer_id: int) -> str:
        """Delete a customer."""
        self.ran.append(("delete_customer", {"customer_id": customer_id}))
        return "deleted"

    def get_invoice(self, invoice_id: int) -> str:
        """Fetch an invoice."""
        raise RuntimeError(f"invoice store offline for {invoice_id}")


def one_call(tool: str, arguments: dict[str, Any], call_id: str) -> ScriptedModel:
    """A model that calls `tool` once, then answers after reading the tool's output."""
    return ScriptedModel(
        [[function_call(tool, arguments, call_id=call_id)], [assistant_message("done")]]
    )


def workflow_of(key: AgentKey, call: str, arguments: dict[str, Any]) -> str:
    return workflow_id_for(call_request_id(key.agent_id, call, arguments))


async def asks_for_permission(gov: Harness, workflow_id: str, *, at_least: int) -> bool:
    """Whether `at_least` processes have asked the workflow for the permission to run."""
    return await permission_asks(gov.proctor.temporal, workflow_id) >= at_least


async def events(gov: Harness, workflow_id: str) -> list[str]:
    return [row.event_type for row in await gov.audit.for_workflow(workflow_id)]


async def test_a_governed_tool_keeps_the_schema_and_runs_an_allowed_call_once(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    plain = function_tool(shop.lookup_order)
    tool = governed_tool(shop.lookup_order, key=key, client=gov.proctor)
    assert (tool.name, tool.description, tool.params_json_schema) == (
        plain.name,
        plain.description,
        plain.params_json_schema,
    )
    call, arguments = call_id(), {"order_id": 7}
    model = one_call("lookup_order", arguments, call)

    result = await Runner.run(Agent(name="support", model=model, tools=[tool]), "where is 7?")

    assert result.final_output == "done"
    assert shop.ran == [("lookup_order", {"order_id": 7})]
    assert tool_output(model, call) == "order 7: shipped"
    workflow_id = workflow_of(key, call, arguments)
    assert await events(gov, workflow_id) == ["decided", "trust_changed", "outcome"]
    outcome = await gov.proctor.outcome(call_request_id(key.agent_id, call, arguments))
    assert (outcome.status, outcome.result) == (ActionStatus.COMPLETED, "order 7: shipped")


async def test_a_denied_call_tells_the_model_why_and_never_runs(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = proctor_tool(key=key, client=gov.proctor)(shop.delete_customer)
    call = call_id()
    model = one_call("delete_customer", {"customer_id": 3}, call)

    result = await Runner.run(Agent(name="support", model=model, tools=[tool]), "forget 3")

    assert result.final_output == "done"  # the run went on: the model read the verdict
    assert shop.ran == []
    assert tool_output(model, call) == (
        "Proctor denied tool:delete_customer (rule framework-no-deletes): "
        "Agents never delete customer data"
    )
    workflow_id = workflow_of(key, call, {"customer_id": 3})
    assert await events(gov, workflow_id) == ["decided", "outcome"]


async def test_an_escalated_call_blocks_until_approved_then_runs_once(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = govern(function_tool(shop.refund_order), key=key, client=gov.proctor)
    call, arguments = call_id(), {"order_id": 5, "amount": 20.5}
    model = one_call("refund_order", arguments, call)
    run = asyncio.create_task(Runner.run(Agent(name="support", model=model, tools=[tool]), "."))
    workflow_id = workflow_of(key, call, arguments)

    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    assert shop.ran == []
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await asyncio.wait_for(run, 30)

    assert shop.ran == [("refund_order", arguments)]
    assert tool_output(model, call) == "refunded 20.5 on order 5"


async def test_an_escalated_call_rejected_by_its_approver_never_runs(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = governed_tool(shop.refund_order, key=key, client=gov.proctor)
    call, arguments = call_id(), {"order_id": 5, "amount": 900.0}
    model = one_call("refund_order", arguments, call)
    run = asyncio.create_task(Runner.run(Agent(name="support", model=model, tools=[tool]), "."))
    workflow_id = workflow_of(key, call, arguments)

    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    await gov.vote(workflow_id, "alice@example.com", approve=False, note="too much")
    await asyncio.wait_for(run, 30)

    assert shop.ran == []
    assert tool_output(model, call).startswith(
        "Proctor rejected tool:refund_order (rule framework-refunds):"
    )


async def test_a_tool_that_raises_is_recorded_failed_and_the_model_told_as_the_sdk_would(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = governed_tool(shop.get_invoice, key=key, client=gov.proctor)
    call = call_id()
    model = one_call("get_invoice", {"invoice_id": 9}, call)

    await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")

    # The SDK's own default failure message for this error (its wording differs by version).
    told = default_tool_error_function(
        RunContextWrapper(None), RuntimeError("invoice store offline for 9")
    )
    assert tool_output(model, call) == told
    outcome = await gov.proctor.outcome(call_request_id(key.agent_id, call, {"invoice_id": 9}))
    assert outcome.status is ActionStatus.FAILED
    assert outcome.error is not None and "invoice store offline for 9" in outcome.error


async def test_an_escalation_pauses_the_run_as_an_sdk_interruption_until_proctor_approves(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = governed_tool(shop.refund_order, key=key, client=gov.proctor, interrupt=True)
    call, arguments = call_id(), {"order_id": 8, "amount": 12.0}
    model = one_call("refund_order", arguments, call)
    agent = Agent(name="support", model=model, tools=[tool])

    paused = await Runner.run(agent, "refund 8")

    (item,) = paused.interruptions
    assert shop.ran == []
    progress = await interruption_progress(item, key=key, client=gov.proctor)
    assert progress.stage is Stage.AWAITING_APPROVAL and progress.pending is not None
    assert progress.pending.card.approvers == ("alice@example.com",)
    await gov.vote(progress.pending.card.workflow_id, "alice@example.com", approve=True)
    state = paused.to_state()
    state.approve(item)
    resumed = await Runner.run(agent, state)

    assert resumed.final_output == "done"
    assert shop.ran == [("refund_order", arguments)]
    assert tool_output(model, call) == "refunded 12.0 on order 8"
    assert (await events(gov, workflow_of(key, call, arguments))).count("decided") == 1


async def test_an_app_approving_locally_runs_nothing_unless_proctor_approves(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = governed_tool(shop.refund_order, key=key, client=gov.proctor, interrupt=True)
    call, arguments = call_id(), {"order_id": 4, "amount": 70.0}
    model = one_call("refund_order", arguments, call)
    agent = Agent(name="support", model=model, tools=[tool])
    paused = await Runner.run(agent, "refund 4")
    (item,) = paused.interruptions
    state = paused.to_state()
    state.approve(item)  # the app says yes; Proctor's approver has not decided

    resumed = asyncio.create_task(Runner.run(agent, state))
    workflow_id = workflow_of(key, call, arguments)
    await gov.wait_until(workflow_id, lambda p: p.stage is Stage.AWAITING_APPROVAL)
    await asyncio.sleep(0.3)
    assert not resumed.done() and shop.ran == []
    await gov.vote(workflow_id, "alice@example.com", approve=False)
    await asyncio.wait_for(resumed, 30)

    assert shop.ran == []
    assert tool_output(model, call).startswith("Proctor rejected tool:refund_order")


async def test_an_allowed_call_under_interrupt_mode_runs_without_pausing(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = governed_tool(shop.lookup_order, key=key, client=gov.proctor, interrupt=True)
    call = call_id()
    model = one_call("lookup_order", {"order_id": 2}, call)

    result = await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")

    assert result.interruptions == []
    assert shop.ran == [("lookup_order", {"order_id": 2})]
    assert await events(gov, workflow_of(key, call, {"order_id": 2})) == [
        "decided",
        "trust_changed",
        "outcome",
    ]


async def test_a_rerun_after_the_agent_stopped_joins_the_same_request_and_runs_once(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    call, arguments = call_id(), {"order_id": 6, "amount": 15.0}
    workflow_id = workflow_of(key, call, arguments)
    first_shop = Shop()
    first = governed_tool(first_shop.refund_order, key=key, client=gov.proctor)
    first_run = asyncio.create_task(
        Runner.run(
            Agent(name="support", model=one_call("refund_order", arguments, call), tools=[first]),
            ".",
        )
    )
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    first_run.cancel()  # the agent process stops while the approval is pending
    with pytest.raises(asyncio.CancelledError):
        await first_run

    fresh_client = Client(gov.proctor.temporal, task_queue=gov.task_queue)
    shop = Shop()
    tool = governed_tool(shop.refund_order, key=key, client=fresh_client)
    model = one_call("refund_order", arguments, call)  # the same tool call, replayed
    rerun = asyncio.create_task(Runner.run(Agent(name="support", model=model, tools=[tool]), "."))
    await eventually(lambda: asks_for_permission(gov, workflow_id, at_least=2))
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await asyncio.wait_for(rerun, 30)

    assert first_shop.ran == []
    assert shop.ran == [("refund_order", arguments)]
    assert tool_output(model, call) == "refunded 15.0 on order 6"
    assert (await events(gov, workflow_id)).count("decided") == 1


async def test_the_guardrail_rejects_a_denied_call_with_the_reason(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    guardrail = ProctorGuardrail(key=key, client=gov.proctor)
    tool = guardrail.attach(function_tool(shop.delete_customer))
    call = call_id()
    model = one_call("delete_customer", {"customer_id": 1}, call)

    result = await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")

    assert shop.ran == []
    assert tool_output(model, call) == (
        "Proctor denied tool:delete_customer (rule framework-no-deletes): "
        "Agents never delete customer data"
    )
    (checked,) = result.tool_input_guardrail_results
    assert checked.output.behavior["type"] == "reject_content"


async def test_the_guardrail_lets_an_allowed_call_run_and_reports_its_output(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    guardrail = ProctorGuardrail(key=key, client=gov.proctor)
    tool = guardrail.attach(function_tool(shop.lookup_order))
    call = call_id()
    model = one_call("lookup_order", {"order_id": 11}, call)

    await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")

    assert shop.ran == [("lookup_order", {"order_id": 11})]
    assert tool_output(model, call) == "order 11: shipped"
    outcome = await gov.proctor.outcome(call_request_id(key.agent_id, call, {"order_id": 11}))
    assert (outcome.status, outcome.result) == (ActionStatus.COMPLETED, "order 11: shipped")


async def test_a_tool_with_only_the_input_guardrail_is_refused_before_anything_runs(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    guardrail = ProctorGuardrail(key=key, client=gov.proctor)
    tool: FunctionTool = function_tool(shop.lookup_order, tool_input_guardrails=[guardrail.input])
    model = one_call("lookup_order", {"order_id": 1}, call_id())

    with pytest.raises(UserError, match="without its output guardrail"):
        await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")
    assert shop.ran == []


# --- inside Temporal's OpenAI Agents plugin -------------------------------------------------

RAN: defaultdict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
"""What the tool activities really ran, by the agent workflow that called them."""


def record(tool: str, **arguments: Any) -> None:
    RAN[str(activity.info().workflow_id)].append((tool, arguments))


@activity.defn
async def lookup_order(order_id: int) -> str:
    """Look up an order's status."""
    record("lookup_order", order_id=order_id)
    return f"order {order_id}: shipped"


@activity.defn
async def refund_order(order_id: int, amount: float) -> str:
    """Refund part of an order."""
    record("refund_order", order_id=order_id, amount=amount)
    return f"refunded {amount} on order {order_id}"


@activity.defn
async def delete_customer(customer_id: int) -> str:
    """Delete a customer."""
    record("delete_customer", customer_id=customer_id)
    return "deleted"


@workflow.defn
class SupportAgent:
    """An agent run by the plugin, written as it would be ungoverned: its tools are the plain
    activities. The worker registers their governed versions under the same names, so the
    agent's key and Proctor's connection stay in the worker, out of workflow code."""

    @workflow.run
    async def run(self, prompt: str) -> str:
        tools = [
            activity_as_tool(
                tool,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=1),  # a dead worker's call is retried soon
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)),
            )
            for tool in (lookup_order, refund_order, delete_customer)
        ]
        agent = Agent(name="support", instructions="Help the customer.", tools=tools)
        result = await Runner.run(agent, prompt, run_config=RunConfig(tracing_disabled=True))
        return str(result.final_output)


def governed_shop(gov: Harness, key: AgentKey) -> list[Callable[..., Any]]:
    """The tool activities as the agent's worker registers them, each asking Proctor through
    Proctor's own client (`gov.proctor`), never the plugin's."""
    return [
        governed_activity(tool, key=key, client=gov.proctor)
        for tool in (lookup_order, refund_order, delete_customer)
    ]


@contextlib.asynccontextmanager
async def agent_worker(
    gov: Harness, model: ScriptedModel, activities: list[Callable[..., Any]], task_queue: str
) -> AsyncIterator[TemporalClient]:
    """A worker running `SupportAgent` under the plugin, the model played by `model`, on the
    harness's Temporal server. The plugin brings its own data converter (it refuses Proctor's),
    so the agent's workflows get a client of their own on the same connection."""
    plugin = OpenAIAgentsPlugin(
        model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=10)),
        model_provider=TestModelProvider(model),
        add_temporal_spans=False,
    )
    agents = TemporalClient(
        gov.proctor.temporal.service_client,
        namespace=gov.proctor.temporal.namespace,
        plugins=[plugin],
    )
    # The sandbox reruns the workflow's module per run; this test module stays outside it.
    restrictions = SandboxRestrictions.default.with_passthrough_modules("tests")
    async with Worker(
        agents,
        task_queue=task_queue,
        workflows=[SupportAgent],
        activities=activities,
        workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
    ):
        yield agents


async def tool_request(agents: TemporalClient, key: AgentKey, run_id: str, tool: str) -> str:
    """The Proctor workflow of agent workflow `run_id`'s call to `tool`, once scheduled: its
    request id comes from the agent, the agent workflow, its run and the tool activity's id."""
    scheduled: list[str] = []

    async def find() -> bool:
        async for event in agents.get_workflow_handle(run_id).fetch_history_events():
            attributes = event.activity_task_scheduled_event_attributes
            if event.HasField("activity_task_scheduled_event_attributes") and (
                attributes.activity_type.name == tool
            ):
                scheduled.append(attributes.activity_id)
                return True
        return False

    await eventually(find)
    run = (await agents.get_workflow_handle(run_id).describe()).run_id
    return workflow_id_for(derive_request_id(key.agent_id, run_id, run, scheduled[0]))


async def test_under_the_plugin_an_allowed_tool_runs_once_and_a_denied_one_is_told_to_the_model(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    governed = governed_shop(gov, key)
    plain = activity_as_tool(lookup_order, start_to_close_timeout=timedelta(seconds=5))
    wrapped = activity_as_tool(governed[0], start_to_close_timeout=timedelta(seconds=5))
    assert isinstance(plain, FunctionTool) and isinstance(wrapped, FunctionTool)
    # activity_as_tool(governed_activity(fn)) shows the model fn's own tool
    assert (wrapped.name, wrapped.description, wrapped.params_json_schema) == (
        plain.name,
        plain.description,
        plain.params_json_schema,
    )
    look, delete, run_id = call_id(), call_id(), call_id()
    model = ScriptedModel(
        [
            [
                function_call("lookup_order", {"order_id": 4}, call_id=look),
                function_call("delete_customer", {"customer_id": 4}, call_id=delete),
            ],
            [assistant_message("done")],
        ]
    )
    task_queue = f"agent-{uuid.uuid4().hex[:8]}"

    async with agent_worker(gov, model, governed, task_queue) as agents:
        answer = await agents.execute_workflow(
            SupportAgent.run, "where is 4? forget customer 4", id=run_id, task_queue=task_queue
        )

    assert answer == "done"
    assert RAN[run_id] == [("lookup_order", {"order_id": 4})]
    assert tool_output(model, look) == "order 4: shipped"
    assert tool_output(model, delete) == (
        "Proctor denied tool:delete_customer (rule framework-no-deletes): "
        "Agents never delete customer data"
    )
    rows = await gov.pool.fetch(
        "SELECT event_type FROM audit_log WHERE agent_id = $1", key.agent_id
    )
    assert sorted(row["event_type"] for row in rows) == [
        "decided",
        "decided",
        "outcome",
        "outcome",
        "trust_changed",
    ]


async def test_under_the_plugin_an_escalated_tool_runs_once_after_its_approval(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    refund, run_id = call_id(), call_id()
    arguments = {"order_id": 3, "amount": 40.0}
    model = one_call("refund_order", arguments, refund)
    task_queue = f"agent-{uuid.uuid4().hex[:8]}"

    async with agent_worker(gov, model, governed_shop(gov, key), task_queue) as agents:
        handle = await agents.start_workflow(
            SupportAgent.run, "refund 40 on order 3", id=run_id, task_queue=task_queue
        )
        request = await tool_request(agents, key, run_id, "refund_order")
        await gov.wait_for_stage(request, "awaiting_approval")
        assert RAN[run_id] == []
        await gov.vote(request, "alice@example.com", approve=True)
        answer = await asyncio.wait_for(handle.result(), 30)

    assert answer == "done"
    assert RAN[run_id] == [("refund_order", arguments)]
    assert tool_output(model, refund) == "refunded 40.0 on order 3"
    assert (await events(gov, request)).count("decided") == 1


async def test_a_governed_activity_retried_on_a_new_worker_joins_its_request_and_runs_once(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    refund, run_id = call_id(), call_id()
    arguments = {"order_id": 3, "amount": 40.0}
    model = one_call("refund_order", arguments, refund)  # the LLM outlives the workers
    task_queue = f"agent-{uuid.uuid4().hex[:8]}"
    async with agent_worker(gov, model, governed_shop(gov, key), task_queue) as agents:
        handle = await agents.start_workflow(
            SupportAgent.run, "refund 40 on order 3", id=run_id, task_queue=task_queue
        )
        request = await tool_request(agents, key, run_id, "refund_order")
        await gov.wait_for_stage(request, "awaiting_approval")
    # That worker is gone, its activity cancelled mid-wait; a new one takes the retry.

    async with agent_worker(gov, model, governed_shop(gov, key), task_queue):
        await eventually(lambda: asks_for_permission(gov, request, at_least=2))
        await gov.vote(request, "alice@example.com", approve=True)
        answer = await asyncio.wait_for(handle.result(), 30)

    assert answer == "done"
    assert RAN[run_id] == [("refund_order", arguments)]
    assert tool_output(model, refund) == "refunded 40.0 on order 3"
    assert (await events(gov, request)).count("decided") == 1


# --- a real agent process, killed while it waits --------------------------------------------

AGENT_SCRIPT = '''
import asyncio, sys
from pathlib import Path

from agents import Agent, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from proctor import AgentKey
from proctor.integrations.openai_agents import proctor_tool

runs, call_id = Path(sys.argv[1]), sys.argv[2]
set_tracing_disabled(True)


@proctor_tool(key=AgentKey.from_env())
def refund_order(order_id: int, amount: float) -> str:
    """Refund part of an order."""
    with runs.open("a") as file:
        file.write(f"refund_order {order_id} {amount}\\n")
    return "refunded"


async def main() -> None:
    call = function_call("refund_order", {"order_id": 7, "amount": 5.0}, call_id=call_id)
    model = ScriptedModel([[call], [assistant_message("done")]])
    agent = Agent(name="support", model=model, tools=[refund_order])
    print("ready", flush=True)
    sys.stdin.readline()  # the test says when to run
    await Runner.run(agent, "refund order 7")
    (output,) = [i["output"] for i in model.last_call.input if "output" in i]
    print("tool said:", output, flush=True)


asyncio.run(main())
'''
"""An agent script: a governed tool whose client connects on first use (from the environment),
its key from the environment, one escalated refund under the tool call id of its second
argument; every run of the tool is appended to the file named by its first."""


async def test_an_agent_process_killed_while_waiting_rejoins_its_request_and_runs_once(
    gov: Harness, tmp_path: Path
) -> None:
    """The first process dies (SIGKILL) while its refund waits for approval; a second one
    replays the same tool call: it joins the same request (one workflow, decided once) and
    after alice approves the tool runs once, in the second process. Both are started (imports
    done) before the first is killed, to keep the test fast."""
    key = await gov.new_agent(role="framework")
    runs = tmp_path / "runs.txt"
    call = call_id()
    env = agent_env(gov.proctor.temporal, gov.task_queue, key, tmp_path)
    workflow_id = workflow_of(key, call, {"order_id": 7, "amount": 5.0})
    said = await kill_while_waiting_then_rejoin(
        gov, AGENT_SCRIPT, env, tmp_path, (str(runs), call), workflow_id
    )
    assert said == "tool said: refunded"
    assert runs.read_text().splitlines() == ["refund_order 7 5.0"]
    assert await agent_events(gov, key.agent_id) == [
        (workflow_id, event)
        for event in ("decided", "escalated", "vote", "trust_changed", "outcome")
    ]


async def test_the_guardrail_holds_an_escalated_call_until_approved_then_runs_it_once(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    guardrail = ProctorGuardrail(key=key, client=gov.proctor)
    tool = guardrail.attach(function_tool(shop.refund_order))
    call, arguments = call_id(), {"order_id": 2, "amount": 5.0}
    model = one_call("refund_order", arguments, call)
    run = asyncio.create_task(Runner.run(Agent(name="support", model=model, tools=[tool]), "."))
    workflow_id = workflow_of(key, call, arguments)

    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    assert shop.ran == []
    await gov.vote(workflow_id, "alice@example.com", approve=True)
    await asyncio.wait_for(run, 30)

    assert shop.ran == [("refund_order", arguments)]
    outcome = await gov.proctor.outcome(call_request_id(key.agent_id, call, arguments))
    assert (outcome.status, outcome.result) == (ActionStatus.COMPLETED, "refunded 5.0 on order 2")


async def test_a_hand_built_tool_that_raises_fails_the_run_as_it_would_ungoverned(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")

    async def broken(context: Any, arguments: str) -> str:
        raise RuntimeError("lookup backend down")

    plain = FunctionTool(
        name="lookup_order",
        description="Look up an order.",
        params_json_schema={"type": "object", "properties": {}, "additionalProperties": False},
        on_invoke_tool=broken,
    )
    tool = govern(plain, key=key, client=gov.proctor)
    call = call_id()
    model = one_call("lookup_order", {}, call)

    with pytest.raises(UserError, match="lookup backend down"):
        await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")
    outcome = await gov.proctor.outcome(call_request_id(key.agent_id, call, {}))
    assert outcome.status is ActionStatus.FAILED


async def test_a_guarded_tool_that_fails_the_run_is_recorded_failed_not_left_hanging(
    gov: Harness,
) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    guardrail = ProctorGuardrail(key=key, client=gov.proctor, report_within=timedelta(seconds=0.3))
    tool = guardrail.attach(function_tool(shop.get_invoice, failure_error_function=None))
    call = call_id()
    model = one_call("get_invoice", {"invoice_id": 5}, call)

    with pytest.raises(UserError, match="invoice store offline"):
        await Runner.run(Agent(name="support", model=model, tools=[tool]), ".")

    outcome = await asyncio.wait_for(
        gov.proctor.outcome(call_request_id(key.agent_id, call, {"invoice_id": 5})), 30
    )
    assert outcome.status is ActionStatus.FAILED
    assert outcome.error is not None and "never reached the guardrail" in outcome.error


async def test_an_interruption_rejected_by_the_app_never_runs_the_tool(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    shop = Shop()
    tool = governed_tool(shop.refund_order, key=key, client=gov.proctor, interrupt=True)
    call, arguments = call_id(), {"order_id": 9, "amount": 3.0}
    model = one_call("refund_order", arguments, call)
    agent = Agent(name="support", model=model, tools=[tool])
    paused = await Runner.run(agent, "refund 9")
    (item,) = paused.interruptions
    state = paused.to_state()
    state.reject(item, rejection_message="The customer withdrew the request")

    resumed = await Runner.run(agent, state)

    assert resumed.final_output == "done"
    assert shop.ran == []
    assert tool_output(model, call) == "The customer withdrew the request"
    workflow_id = workflow_of(key, call, arguments)
    assert (await gov.proctor.progress(workflow_id)).stage is Stage.AWAITING_APPROVAL
    await gov.vote(workflow_id, "alice@example.com", approve=False)  # closes it for the suite
