"""The gateway behind the OpenAI Agents SDK's own MCP client, set up as the README shows: a real
`Agent(mcp_servers=[MCPServerStdio(params={"command": "proctor", "args": ["mcp-gateway",
"--config", "mcp.yaml"]})])` run by the real `Runner`, its model the SDK's `ScriptedModel` (no
network, no LLM). The gateway governs on a real worker, Temporal and Postgres under
tests/e2e/policies/mcp.yaml (echo allowed, deletes denied, refunds escalated to alice).

What the SDK's client adds to the picture: it only runs tools it was given, so a tool the
gateway hides is refused by the SDK itself and never reaches the gateway; a denied tool's verdict
reaches the model as the tool's plain output; and a call is cut off after the client's
`client_session_timeout_seconds` (5 by default), progress notifications notwithstanding, so an
escalated call answers within it only when the gateway's `max_wait_seconds` is shorter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agents import Agent, Runner, set_tracing_disabled
from agents.exceptions import ModelBehaviorError
from agents.mcp import MCPServerStdio
from agents.testing import ScriptedModel, assistant_message, function_call

from tests.helpers.harness import Harness
from tests.helpers.mcp_gateway import (
    GatewaySetup,
    awaiting_approval,
    files_gateway,
    listed,
    requests_of,
    statuses,
)
from tests.helpers.openai_agents import call_id, tool_output

set_tracing_disabled(True)  # no traces exported: nothing leaves the machine

ALICE = "alice@example.com"


def gateway(setup: GatewaySetup) -> MCPServerStdio:
    """The README's `MCPServerStdio`, SDK defaults kept; its command is `proctor` there, this
    interpreter running Proctor's entry point here."""
    started = setup.stdio_parameters()
    return MCPServerStdio(
        params={
            "command": started.command,
            "args": started.args,
            "env": setup.env,
            "cwd": str(started.cwd),
        }
    )


def text(said: str) -> list[dict[str, str]]:
    """A text tool output as the SDK hands it to the model."""
    return [{"type": "input_text", "text": said}]


def offered(model: ScriptedModel) -> list[list[str]]:
    """The tools the model was given, turn by turn."""
    return [sorted(tool.name for tool in turn.tools) for turn in model.calls]


async def test_the_model_gets_the_upstreams_answer_and_is_never_offered_a_denied_tool(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """The model calls the hidden delete anyway: the SDK stops the run on a tool it was not
    given (its default `tool_not_found_behavior`), so the call never reaches the gateway."""
    setup = await files_gateway(gov, tmp_path, database_dsn)
    echo, delete = call_id(), call_id()
    model = ScriptedModel(
        [
            [function_call("files__echo", {"text": "hello"}, call_id=echo)],
            [function_call("files__delete_customer", {"customer_id": "c-1"}, call_id=delete)],
        ]
    )

    async with gateway(setup) as server:
        agent = Agent(name="support", model=model, mcp_servers=[server])
        with pytest.raises(ModelBehaviorError, match="Tool files__delete_customer not found"):
            await Runner.run(agent, "say hello, then forget customer c-1")

    names = listed("files")
    assert offered(model) == [names, names]
    assert tool_output(model, echo) == text("hello")
    assert setup.ran() == [{"tool": "echo", "text": "hello"}]
    assert await statuses(gov, setup.key.agent_id) == ["completed"]


async def test_a_denied_call_tells_the_model_the_verdict_and_never_reaches_the_upstream(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """With `hide_denied_tools: false` the model is offered the delete and calls it: the
    gateway's error result (isError) reaches the model as the tool's plain output, the
    verdict's one line, and the run goes on."""
    setup = await files_gateway(gov, tmp_path, database_dsn, hide_denied_tools=False)
    delete = call_id()
    model = ScriptedModel(
        [
            [function_call("files__delete_customer", {"customer_id": "c-1"}, call_id=delete)],
            [assistant_message("I may not delete customers.")],
        ]
    )

    async with gateway(setup) as server:
        agent = Agent(name="support", model=model, mcp_servers=[server])
        result = await Runner.run(agent, "forget customer c-1")

    assert result.final_output == "I may not delete customers."
    assert "files__delete_customer" in offered(model)[0]
    assert tool_output(model, delete) == text(
        "Proctor denied mcp:files:delete_customer (rule mcp-no-deletes): "
        "Agents never delete customer data"
    )
    assert setup.ran() == []
    assert await statuses(gov, setup.key.agent_id) == ["denied"]


async def test_an_escalated_call_tells_the_model_to_call_again_and_runs_once_approved(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """`max_wait_seconds` under the SDK's 5 s read timeout: the model reads "still awaiting
    approval" instead of a timeout; once alice approves, the same call on the next turn runs
    the refund, once, in the same request."""
    setup = await files_gateway(gov, tmp_path, database_dsn, max_wait_seconds=1)
    arguments = {"order_id": 7, "amount": 12.5}
    first, again = call_id(), call_id()
    asked = ScriptedModel(
        [[function_call("files__refund", arguments, call_id=first)], [assistant_message("wait")]]
    )
    retried = ScriptedModel(
        [[function_call("files__refund", arguments, call_id=again)], [assistant_message("done")]]
    )

    async with gateway(setup) as server:
        await Runner.run(Agent(name="support", model=asked, mcp_servers=[server]), "refund 7")
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        await gov.vote(workflow_id, ALICE, approve=True)
        await gov.wait_for_stage(workflow_id, "awaiting_execution")
        await Runner.run(Agent(name="support", model=retried, mcp_servers=[server]), "and now?")

    request_id = workflow_id.removeprefix("action-")
    assert tool_output(asked, first) == text(
        f"Proctor: mcp:files:refund is still awaiting approval after 1s (request {request_id}). "
        "Nothing ran. Call this tool again with the same arguments to keep waiting: the "
        "approval is not lost."
    )
    ((kind, refunded),) = [(item["type"], item["text"]) for item in tool_output(retried, again)]
    assert kind == "input_text" and json.loads(refunded) == {"order_id": 7, "refunded": 12.5}
    assert setup.ran() == [{"tool": "refund", "order_id": 7, "amount": 12.5}]
    assert await requests_of(gov, setup.key.agent_id) == [workflow_id]
    assert await statuses(gov, setup.key.agent_id) == ["completed"]
