"""The framework adapters' overhead: one allowed tool call through each adapter against the
same framework calling `Client.execute` by hand (the glue a user wrote before), same server,
same worker, same run; and `Client.call` / `SyncClient.call` against `Client.execute` itself.

    python -m bench.adapters [--runs 40]

Each pair runs A/B alternated, each run after a random pause of up to one transfer-task load
period, on a dev server whose transfer-task load is unthrottled (see bench/e2e_latency.py):
what remains is what an allowed call costs. The figure that matters is the ratio of medians
(target at most 1.05x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.database import bench_database
from bench.e2e_latency import SERVERS, alternate, summary
from proctor import AgentKey, Client, SyncClient
from proctor.approvals.keys import VoteKeyDirectory
from proctor.audit.keys import LedgerKeys
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text
from proctor.stores.agents import AgentStore
from proctor_server.worker.main import build_worker

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
POLICY = b"""role: bench
permissions:
  allow: ['tool:*']
"""
Run = Callable[[], Awaitable[None]]


RAN: list[int] = []
"""Every run of the tool, so each measured call is checked to have run it exactly once."""


def lookup_order(order_id: int) -> str:
    """Look up an order's status."""
    RAN.append(order_id)
    return f"order {order_id}: shipped"


class Pairs:
    """Each measured call, as (baseline, adapter) on one client and key."""

    def __init__(self, client: Client, key: AgentKey) -> None:
        self.client = client
        self.key = key
        self.sync = SyncClient(client)

    async def by_hand(self, order_id: int = 1) -> str:
        """What a framework's tool did before the adapters: Client.execute, checked."""
        outcome = await self.client.execute(
            self.key,
            "tool:lookup_order",
            {"order_id": order_id},
            handler=lambda params: lookup_order(**params),
        )
        outcome.raise_for_status()
        return str(outcome.result)

    async def execute(self) -> None:
        await self.by_hand()

    async def call(self) -> None:
        await self.client.call(self.key, "tool:lookup_order", lookup_order, {"order_id": 1})

    async def call_rejoinable(self) -> None:
        """`Client.call` given a request id, as every adapter calls it (a rejoin is checked)."""
        await self.client.call(
            self.key,
            "tool:lookup_order",
            lookup_order,
            {"order_id": 1},
            request_id=uuid.uuid4().hex,
        )

    async def sync_call(self) -> None:
        await asyncio.to_thread(
            self.sync.call, self.key, "tool:lookup_order", lookup_order, {"order_id": 1}
        )

    async def execute_in_thread(self) -> None:
        """The baseline for the sync twin: the same hop to a thread, then Client.execute."""
        await asyncio.to_thread(lambda: None)
        await self.by_hand()

    # --- LangChain ------------------------------------------------------------------------

    def langchain(self) -> tuple[Run, Run]:
        from langchain.agents import create_agent
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.runnables import RunnableConfig
        from langchain_core.tools import tool

        from proctor.integrations.langchain import ProctorMiddleware

        class Model(GenericFakeChatModel):
            def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
                return self

        def model() -> Model:
            call = {"name": "lookup_order", "args": {"order_id": 1}, "id": uuid.uuid4().hex}
            return Model(messages=iter([AIMessage(content="", tool_calls=[call]), "done"]))

        by_hand = self.by_hand

        @tool("lookup_order")
        async def glued(order_id: int) -> str:
            """Look up an order's status."""
            return await by_hand(order_id)

        plain = tool(lookup_order)
        middleware = ProctorMiddleware(key=self.key, client=self.client)

        async def baseline() -> None:
            agent = create_agent(model(), [glued])
            await agent.ainvoke({"messages": [HumanMessage("go")]})

        async def adapter() -> None:
            agent = create_agent(model(), [plain], middleware=[middleware])
            config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
            await agent.ainvoke({"messages": [HumanMessage("go")]}, config)

        return baseline, adapter

    # --- OpenAI Agents SDK ----------------------------------------------------------------

    def openai_agents(self) -> tuple[Run, Run]:
        from agents import Agent, Runner, function_tool, set_tracing_disabled
        from agents.testing import ScriptedModel, assistant_message, function_call

        from proctor.integrations.openai_agents import governed_tool

        set_tracing_disabled(True)

        def model() -> ScriptedModel:
            call = function_call("lookup_order", {"order_id": 1}, call_id=uuid.uuid4().hex)
            return ScriptedModel([[call], [assistant_message("done")]])

        by_hand = self.by_hand

        @function_tool(name_override="lookup_order")
        async def glued(order_id: int) -> str:
            """Look up an order's status."""
            return await by_hand(order_id)

        governed = governed_tool(lookup_order, key=self.key, client=self.client)

        async def baseline() -> None:
            await Runner.run(Agent(name="a", model=model(), tools=[glued]), "go")

        async def adapter() -> None:
            await Runner.run(Agent(name="a", model=model(), tools=[governed]), "go")

        return baseline, adapter

    # --- PydanticAI -----------------------------------------------------------------------

    def pydantic_ai(self) -> tuple[Run, Run]:
        from pydantic_ai import Agent, Tool
        from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
        from pydantic_ai.models.function import AgentInfo, FunctionModel
        from pydantic_ai.toolsets import FunctionToolset

        from proctor.integrations.pydantic_ai import ProctorToolset

        def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            if len(messages) == 1:
                call = ToolCallPart("lookup_order", {"order_id": 1}, tool_call_id=uuid.uuid4().hex)
                return ModelResponse(parts=[call])
            return ModelResponse(parts=[TextPart("done")])

        by_hand = self.by_hand

        async def glued_lookup_order(order_id: int) -> str:
            """Look up an order's status."""
            return await by_hand(order_id)

        glued = FunctionToolset([Tool(glued_lookup_order, name="lookup_order")])
        governed = ProctorToolset(FunctionToolset([lookup_order]), key=self.key, client=self.client)

        async def baseline() -> None:
            await Agent(FunctionModel(script), toolsets=[glued]).run("go")

        async def adapter() -> None:
            await Agent(FunctionModel(script), toolsets=[governed]).run("go")

        return baseline, adapter


async def measure(runs: int, dsn: str) -> dict[str, Any]:
    engine = PolicyEngine(PolicySet((parse_policy_text(POLICY, "bench.yaml"),), "bench"))
    results: dict[str, Any] = {
        "benchmark": "adapters",
        "runs": runs,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python "
        f"{platform.python_version()}",
        "server": SERVERS["unthrottled"],
        "pairs": {},
    }
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=SERVERS["unthrottled"],
    ) as env:
        pool = await connect_pool(dsn, max_size=10)
        key = AgentKey.generate(f"bench-{uuid.uuid4().hex[:8]}", "ed25519")
        await AgentStore(pool).register(
            key.agent_id, role="bench", owner="b@example.com", public_key_pem=key.public_key_pem
        )
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        vote_keys = VoteKeyDirectory(Path(tempfile.mkdtemp(prefix="bench-votekeys-")))
        pairs = Pairs(Client(env.client, task_queue=queue), key)
        measured: dict[str, tuple[Run, Run]] = {
            "Client.call": (pairs.execute, pairs.call),
            "Client.call with a request id": (pairs.execute, pairs.call_rejoinable),
            "SyncClient.call (from a thread)": (pairs.execute_in_thread, pairs.sync_call),
            "LangChain create_agent + ProctorMiddleware": pairs.langchain(),
            "OpenAI Agents Runner + governed_tool": pairs.openai_agents(),
            "PydanticAI Agent + ProctorToolset": pairs.pydantic_ai(),
        }
        async with build_worker(
            env.client,
            pool,
            lambda: engine,
            task_queue=queue,
            keys=LedgerKeys.generate(),
            vote_keys=vote_keys,
        ):
            for name, (baseline, adapter) in measured.items():
                for _ in range(5):  # warm up: imports, caches, sticky queues
                    await baseline()
                    await adapter()
                base, adapted = await alternate(_timed(baseline), _timed(adapter), runs)
                b, a = summary(base), summary(adapted)
                results["pairs"][name] = {
                    "baseline": b,
                    "adapter": a,
                    "ratio_p50": a["p50_ms"] / b["p50_ms"],
                }
                print(
                    f"{name:44} baseline {b['p50_ms']:7.2f} ms  adapter {a['p50_ms']:7.2f} ms"
                    f"  ratio {a['p50_ms'] / b['p50_ms']:.3f}x",
                    flush=True,
                )
        pairs.sync.close()
        await pool.close()
    return results


def _timed(run: Run) -> Callable[[], Awaitable[float | None]]:
    """`run`, checked to have run the tool once (a call that errs or skips it is no figure)."""

    async def once() -> float | None:
        before = len(RAN)
        await run()
        if len(RAN) != before + 1:
            raise RuntimeError(f"{run.__qualname__} ran the tool {len(RAN) - before} times")
        return None

    return once


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    async with bench_database() as dsn:
        result = await measure(args.runs, dsn)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "adapters.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
