"""The gateway over stdio, as Claude Desktop or `MCPServerStdio` runs it: a real `mcp.Client`
starts `proctor mcp-gateway`, which starts the test upstream over stdio; a real worker governs
on Temporal and Postgres under tests/e2e/policies/mcp.yaml (echo allowed, deletes denied,
refunds escalated to alice)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import mcp_types as types
import pytest
import yaml
from mcp.client import Client as McpClient
from mcp.shared.exceptions import MCPError

from proctor.canonical import digest
from tests.helpers.agent_process import agent_events, permission_asks
from tests.helpers.harness import Harness, eventually
from tests.helpers.mcp_gateway import (
    UPSTREAM,
    awaiting_approval,
    files_gateway,
    free_port,
    gateway_setup,
    http_process,
    listed,
    requests_of,
    statuses,
    stdio_session,
    text_of,
)

ALICE = "alice@example.com"


async def test_tools_are_listed_under_the_prefix_and_each_call_is_governed(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """One session: the listing (delete_customer hidden: policy denies it outright), an
    allowed call returning the upstream's result, the same call again within the window (the
    recorded answer: the upstream ran once), other arguments (another request), and the hidden
    tool called anyway (denied, with the rule and reason for the model)."""
    setup = await files_gateway(gov, tmp_path, database_dsn)
    async with stdio_session(setup) as client:
        listing = await client.list_tools()
        first = await client.call_tool("files__echo", {"text": "once"})
        again = await client.call_tool("files__echo", {"text": "once"})
        other = await client.call_tool("files__echo", {"text": "twice"})
        denied = await client.call_tool("files__delete_customer", {"customer_id": "c-1"})
        given = await client.call_tool("files__env_var", {"name": "UPSTREAM_NAME"})
        leaked = [
            text_of(await client.call_tool("files__env_var", {"name": name}))
            for name in ("PROCTOR_DATABASE_URL", "TEMPORAL_ADDRESS", "PROCTOR_TASK_QUEUE")
        ]
    names = sorted(tool.name for tool in listing.tools)
    assert names == listed("files")
    # The upstream gets its own `env` (and the SDK's safe defaults), not the gateway's.
    assert text_of(given) == "upstream"
    assert leaked == ["", "", ""]
    assert not first.is_error and not again.is_error
    assert text_of(first) == text_of(again) == "once"
    assert text_of(other) == "twice"
    assert [run["text"] for run in setup.ran("echo")] == ["once", "twice"]
    assert denied.is_error
    assert text_of(denied) == (
        "Proctor denied mcp:files:delete_customer (rule mcp-no-deletes): "
        "Agents never delete customer data"
    )
    assert setup.ran("delete_customer") == []
    statuses_ = await statuses(gov, setup.key.agent_id)
    assert statuses_ == ["completed", "completed", "denied"] + ["completed"] * 4


async def test_an_escalated_call_waits_with_progress_notifications_and_runs_once_approved(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    setup = await files_gateway(gov, tmp_path, database_dsn, progress_interval_seconds=0.2)
    notices: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notices.append((progress, message))

    async with stdio_session(setup) as client:
        call = asyncio.create_task(
            client.call_tool(
                "files__refund", {"order_id": 7, "amount": 12.5}, progress_callback=on_progress
            )
        )
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        await eventually(lambda: len(notices) >= 2)
        assert setup.ran() == []
        await gov.vote(workflow_id, ALICE, approve=True)
        result = await asyncio.wait_for(call, 30)
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"order_id": 7, "refunded": 12.5}
    assert setup.ran("refund") == [{"tool": "refund", "order_id": 7, "amount": 12.5}]
    values = [value for value, _ in notices]
    assert values == sorted(values) and len(set(values)) == len(values)  # increasing, per spec
    assert f"awaiting approval (0 approved, 0 denied; approvers: {ALICE})" in (notices[0][1] or "")
    assert workflow_id in (notices[0][1] or "")
    outcome = await gov.proctor.outcome(workflow_id.removeprefix("action-"))
    assert outcome.status == "completed"


async def test_a_rejected_call_is_a_tool_error_and_never_runs(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    setup = await files_gateway(gov, tmp_path, database_dsn)
    async with stdio_session(setup) as client:
        call = asyncio.create_task(client.call_tool("files__refund", {"order_id": 8, "amount": 1}))
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        await gov.vote(workflow_id, ALICE, approve=False)
        result = await asyncio.wait_for(call, 30)
    assert result.is_error
    assert text_of(result).startswith("Proctor rejected mcp:files:refund (rule mcp-refunds)")
    assert setup.ran() == []


async def test_a_client_that_disconnects_while_waiting_keeps_its_approval_by_calling_again(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """Claude Desktop quits while a refund awaits approval (its gateway process ends with it);
    alice approves meanwhile; started again, the same call joins the same request and runs it
    once. Only the live call ever asked for the permission to run: the one that went away left
    no ask behind for the approval to go to."""
    setup = await files_gateway(gov, tmp_path, database_dsn, progress_interval_seconds=0.2)
    arguments = {"order_id": 9, "amount": 3.0}
    async with stdio_session(setup) as first:
        waiting = asyncio.create_task(first.call_tool("files__refund", arguments))
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        waiting.cancel()
    await gov.vote(workflow_id, ALICE, approve=True)
    await gov.wait_for_stage(workflow_id, "awaiting_execution")
    async with stdio_session(setup) as second:
        result = await second.call_tool("files__refund", arguments)
    assert not result.is_error, text_of(result)
    assert setup.ran("refund") == [{"tool": "refund", "order_id": 9, "amount": 3.0}]
    workflows = {workflow for workflow, _ in await agent_events(gov, setup.key.agent_id)}
    assert workflows == {workflow_id}
    assert await permission_asks(gov.proctor.temporal, workflow_id) == 1


async def test_a_call_made_again_while_waiting_waits_with_the_first_and_it_runs_once(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    setup = await files_gateway(gov, tmp_path, database_dsn, progress_interval_seconds=0.2)
    arguments = {"order_id": 10, "amount": 1.5}
    notices: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notices.append(message)

    async with stdio_session(setup) as first:
        waiting = asyncio.create_task(first.call_tool("files__refund", arguments))
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        waiting.cancel()
    async with stdio_session(setup) as second:
        again = asyncio.create_task(
            second.call_tool("files__refund", arguments, progress_callback=on_progress)
        )
        await eventually(lambda: bool(notices))  # the second call is waiting
        await gov.vote(workflow_id, ALICE, approve=True)
        result = await asyncio.wait_for(again, 30)
    assert not result.is_error, text_of(result)
    assert setup.ran("refund") == [{"tool": "refund", "order_id": 10, "amount": 1.5}]
    assert workflow_id in (notices[0] or "")


async def test_an_upstream_that_crashes_or_hangs_fails_that_call_clearly_and_is_restarted(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """The upstream process dies in the middle of a call, then (restarted) takes longer than
    `call_timeout_seconds`: each call gets one clear line, the gateway stays up, and the
    restarted upstream answers the next call."""
    key = await gov.new_agent(role="mcp")
    setup = gateway_setup(gov, key, tmp_path / "gateway", database_dsn)
    setup.write_config({"files": setup.stdio_upstream(call_timeout_seconds=1)})
    async with stdio_session(setup) as client:
        crashed = await client.call_tool("files__crash", {"reason": "test"})
        after_crash = await client.call_tool("files__echo", {"text": "still here"})
        hung = await client.call_tool("files__hang", {"seconds": 60})
        after_hang = await client.call_tool("files__echo", {"text": "awake"})
    assert crashed.is_error
    assert text_of(crashed) == (
        "upstream MCP server 'files' failed during the call to 'crash' (Connection closed); "
        "it is being restarted"
    )
    assert not after_crash.is_error and text_of(after_crash) == "still here"
    assert hung.is_error
    assert text_of(hung) == (
        "upstream MCP server 'files' did not answer 'hang' within 1s (call_timeout_seconds); "
        "it is being restarted"
    )
    assert text_of(after_hang) == "awake"
    assert [run["tool"] for run in setup.ran()] == ["crash", "echo", "hang", "echo"]
    assert await statuses(gov, key.agent_id) == ["failed", "completed", "failed", "completed"]


async def test_resources_and_prompts_pass_through_and_a_read_can_be_governed(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    key = await gov.new_agent(role="mcp")
    setup = gateway_setup(gov, key, tmp_path / "gateway", database_dsn)
    setup.write_config(
        {
            "files": setup.stdio_upstream("files"),
            "notes": setup.stdio_upstream("notes", govern_reads=True),
            "secrets": setup.stdio_upstream("secrets", govern_reads=True),
        }
    )
    async with stdio_session(setup) as client:
        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == [
            "files://readme",
            "notes://readme",
            "secrets://readme",
        ]
        assert await statuses(gov, key.agent_id) == []
        read = await client.read_resource("notes://readme")
        ungoverned = await client.read_resource("files://readme")
        with pytest.raises(MCPError) as refused:
            await client.read_resource("secrets://readme")
        tools = {tool.name for tool in (await client.list_tools()).tools}
        prompts = await client.list_prompts()
        prompt = await client.get_prompt("notes__greet", {"name": "Ada"})
    for contents in (read.contents, ungoverned.contents):
        assert [c.text for c in contents if isinstance(c, types.TextResourceContents)] == [
            "read me through the gateway"
        ]
    assert sorted(p.name for p in prompts.prompts) == [
        "files__greet",
        "notes__greet",
        "secrets__greet",
    ]
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent) and message.text == "Say hello to Ada."
    assert refused.value.message == (
        "Proctor denied mcp:secrets:read (rule mcp-no-secrets): The secrets server is for "
        "people only"
    )
    assert not any(name.startswith("secrets__") for name in tools)  # every call denied: hidden
    assert "notes__echo" in tools
    assert await statuses(gov, key.agent_id) == ["completed", "denied"]  # the governed reads


async def test_a_call_that_waited_its_longest_says_so_and_the_same_call_later_runs_once_approved(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    setup = await files_gateway(gov, tmp_path, database_dsn, max_wait_seconds=1)
    arguments = {"order_id": 31, "amount": 2.0}
    async with stdio_session(setup) as client:
        waited = await client.call_tool("files__refund", arguments)
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        await gov.vote(workflow_id, ALICE, approve=True)
        await gov.wait_for_stage(workflow_id, "awaiting_execution")
        later = await client.call_tool("files__refund", arguments)
    assert waited.is_error
    request_id = workflow_id.removeprefix("action-")
    assert text_of(waited) == (
        f"Proctor: mcp:files:refund is still awaiting approval after 1s (request {request_id}). "
        "Nothing ran. Call this tool again with the same arguments to keep waiting: the "
        "approval is not lost."
    )
    assert not later.is_error, text_of(later)
    assert setup.ran("refund") == [{"tool": "refund", "order_id": 31, "amount": 2.0}]


async def test_an_approval_is_for_those_arguments_only(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """Attacker side: a model (or a compromised MCP client) that got a small refund approved
    calls the same tool again with a bigger amount: another request, waiting for its own
    approval; nothing of the approval carries over."""
    setup = await files_gateway(gov, tmp_path, database_dsn, max_wait_seconds=2)
    async with stdio_session(setup) as client:
        small = asyncio.create_task(client.call_tool("files__refund", {"order_id": 7, "amount": 1}))
        workflow_id = await awaiting_approval(gov, setup.key.agent_id)
        await gov.vote(workflow_id, ALICE, approve=True)
        assert not (await asyncio.wait_for(small, 30)).is_error
        big = await client.call_tool("files__refund", {"order_id": 7, "amount": 1000})
    assert big.is_error and "is still awaiting approval" in text_of(big)
    assert setup.ran("refund") == [{"tool": "refund", "order_id": 7, "amount": 1}]
    assert await statuses_so_far(gov, setup.key.agent_id) == ["completed", "awaiting_approval"]


async def statuses_so_far(gov: Harness, agent_id: str) -> list[str]:
    """Where each of the agent's requests stands (closed ones by their status)."""
    stands: list[str] = []
    for workflow in await requests_of(gov, agent_id):
        progress = await gov.proctor.progress(workflow)
        closed = progress.outcome.status if progress.outcome is not None else None
        stands.append(closed or progress.stage.value)
    return stands


async def test_without_the_registry_nothing_is_hidden_and_every_call_is_still_governed(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """A gateway on a laptop that cannot read the registry: it cannot tell which rules apply
    to its agent, so it hides nothing and guesses nothing; the worker decides as ever. Its key
    comes from PROCTOR_AGENT_KEY, the config naming none."""
    setup = await files_gateway(gov, tmp_path, database_dsn)
    document = yaml.safe_load(setup.config.read_text())
    setup.config.write_text(yaml.safe_dump({k: v for k, v in document.items() if k != "agent_key"}))
    setup.env["PROCTOR_AGENT_KEY"] = str(setup.folder / f"{setup.key.agent_id}.pem")
    del setup.env["PROCTOR_DATABASE_URL"]
    setup.env["PROCTOR_STATE_DIR"] = str(tmp_path / "no-stack")  # no `proctor up` to find
    async with stdio_session(setup) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        allowed = await client.call_tool("files__echo", {"text": "decided first"})
        denied = await client.call_tool("files__delete_customer", {"customer_id": "c-3"})
    assert "files__delete_customer" in names
    assert text_of(allowed) == "decided first"
    assert denied.is_error and "(rule mcp-no-deletes)" in text_of(denied)
    assert [run["tool"] for run in setup.ran()] == ["echo"]
    assert await statuses(gov, setup.key.agent_id) == ["completed", "denied"]


async def test_a_result_too_large_to_record_reaches_the_client_and_is_kept_as_its_digest(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """A 400 kB tool result (a file's contents): the client gets all of it; the ledger and
    history keep its size and SHA-256 only; the same call again says it ran and why its result
    cannot be given twice."""
    setup = await files_gateway(gov, tmp_path, database_dsn)
    async with stdio_session(setup) as client:
        whole = await client.call_tool("files__big", {"size": 400_000})
        again = await client.call_tool("files__big", {"size": 400_000})
    assert not whole.is_error and text_of(whole) == "x" * 400_000
    assert again.is_error and "was too large to record" in text_of(again)
    assert len(setup.ran("big")) == 1
    [workflow] = {w for w, _ in await agent_events(gov, setup.key.agent_id)}
    outcome = await gov.proctor.outcome(workflow.removeprefix("action-"))
    assert outcome.status == "completed"
    assert isinstance(outcome.result, dict)
    assert outcome.result["proctor_result_too_large"] is True
    assert outcome.result["sha256"] == digest(
        whole.model_dump(mode="json", by_alias=True, exclude_none=True)
    )


async def test_an_upstream_that_is_down_lists_nothing_until_it_is_back_and_never_holds_up_the_rest(
    gov: Harness, tmp_path: Path, database_dsn: str
) -> None:
    """The tickets server is not running when the gateway starts: listing answers at once with
    the files server's tools, its calls work; once tickets is up, the gateway's next attempt
    (backing off) connects and its tools appear."""
    key = await gov.new_agent(role="mcp")
    setup = gateway_setup(gov, key, tmp_path / "gateway", database_dsn)
    port = free_port()
    setup.write_config(
        {"files": setup.stdio_upstream(), "tickets": {"url": f"http://127.0.0.1:{port}/mcp"}}
    )
    upstream_argv = [*UPSTREAM, "--http", str(port)]
    async with stdio_session(setup) as client:
        started = time.monotonic()
        before = {tool.name for tool in (await client.list_tools()).tools}
        listing_took = time.monotonic() - started
        echoed = await client.call_tool("files__echo", {"text": "files still work"})
        async with http_process(upstream_argv, setup.env, port, tmp_path / "tickets.log"):
            await eventually(lambda: lists(client, "tickets__echo"), seconds=40)
            back = await client.call_tool("tickets__echo", {"text": "tickets is back"})
    assert before == set(listed("files"))
    assert listing_took < 10  # not the 30 s connect timeout: a refused connection fails at once
    assert text_of(echoed) == "files still work"
    assert not back.is_error and text_of(back) == "tickets is back"


async def lists(client: McpClient, name: str) -> bool:
    return name in {tool.name for tool in (await client.list_tools()).tools}
