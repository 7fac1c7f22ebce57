"""`SyncClient` on the real stack: blocking governed calls from sync code and from inside a
running event loop, the function running in the caller's own thread."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from proctor import ActionDenied, ActionRejected, SyncClient
from tests.helpers.harness import Harness

CALLER = contextvars.ContextVar[str]("caller", default="none")


class Refund(BaseModel):
    order_id: int
    amount: float
    at: datetime


def lookup_order(order_id: int) -> dict[str, object]:
    return {"order_id": order_id, "thread": threading.current_thread().name, "ctx": CALLER.get()}


async def test_a_sync_call_runs_in_the_callers_thread_from_inside_a_running_loop(
    gov: Harness,
) -> None:
    """Called straight from a coroutine (that loop's thread blocks on the call), the function
    runs in that thread, with its context variables, and returns its own value. The caller's
    loop runs on a thread of its own here: this test's loop runs the worker."""
    key = await gov.new_agent(role="framework")
    client = SyncClient(gov.proctor)

    async def agent_code() -> tuple[object, str]:
        CALLER.set("the agent")
        asyncio.get_running_loop()  # inside a running loop, as a framework's async run is
        value = client.call(key, "tool:lookup_order", lookup_order, {"order_id": 7})
        return value, threading.current_thread().name

    try:
        value, caller = await asyncio.to_thread(asyncio.run, agent_code())
    finally:
        client.close()
    assert value == {"order_id": 7, "thread": caller, "ctx": "the agent"}


async def test_a_denied_sync_call_raises_the_typed_error_and_never_runs(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    ran: list[int] = []

    def delete_customer(customer_id: int) -> None:
        ran.append(customer_id)

    with SyncClient(gov.proctor) as client, pytest.raises(ActionDenied) as denied:
        await asyncio.to_thread(
            client.call, key, "tool:delete_customer", delete_customer, {"customer_id": 1}
        )
    assert ran == []
    assert denied.value.rule_id == "framework-no-deletes"
    assert denied.value.reason == "Agents never delete customer data"


async def test_typed_results_come_back_as_the_callers_model(gov: Harness) -> None:
    """Run here: the function's own object. Joined later from another client: the recorded
    JSON validated into the function's return annotation."""
    key = await gov.new_agent(role="framework")
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    async def get_refund(order_id: int) -> Refund:
        return Refund(order_id=order_id, amount=5.5, at=at)

    request_id = f"typed-{key.agent_id}"
    first = await gov.proctor.call(
        key, "tool:get_refund", get_refund, {"order_id": 3}, request_id=request_id
    )
    assert isinstance(first, Refund) and first.at == at
    with SyncClient(gov.proctor) as client:
        again = await asyncio.to_thread(
            client.call,
            key,
            "tool:get_refund",
            get_refund,
            {"order_id": 3},
            request_id=request_id,
        )
    assert again == first  # validated back from the recorded JSON, not run twice


async def test_a_function_that_raises_re_raises_its_own_exception(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")

    def lookup_missing(order_id: int) -> None:
        raise LookupError(f"no order {order_id}")

    with pytest.raises(LookupError, match="no order 9") as raised:
        await gov.proctor.call(key, "tool:lookup_missing", lookup_missing, {"order_id": 9})
    assert any("recorded by Proctor as failed" in note for note in raised.value.__notes__)


async def test_decide_then_call_runs_an_approved_action_once(gov: Harness) -> None:
    """The pause-and-resume shape frameworks use: decide without taking the permission, the
    human approves in Proctor, the same request id runs it."""
    key = await gov.new_agent(role="framework")
    request_id = f"decide-{key.agent_id}"
    runs: list[int] = []

    def refund_order(order_id: int) -> str:
        runs.append(order_id)
        return "refunded"

    progress = await gov.proctor.decide(
        key, "tool:refund_order", {"order_id": 4}, request_id=request_id
    )
    assert progress.stage.value == "awaiting_approval" and progress.pending is not None
    assert progress.pending.card.rule_id == "framework-refunds"
    again = await gov.proctor.decide(
        key, "tool:refund_order", {"order_id": 4}, request_id=request_id
    )
    assert again.stage.value == "awaiting_approval"  # joined, not asked twice
    await gov.vote(f"action-{request_id}", "alice@example.com", approve=True)
    await gov.wait_for_stage(f"action-{request_id}", "awaiting_execution")
    assert runs == []
    result = await gov.proctor.call(
        key, "tool:refund_order", refund_order, {"order_id": 4}, request_id=request_id
    )
    assert (result, runs) == ("refunded", [4])


async def test_a_rejected_decision_raises_on_call(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    request_id = f"reject-{key.agent_id}"
    runs: list[int] = []
    await gov.proctor.decide(key, "tool:refund_order", {"order_id": 5}, request_id=request_id)
    await gov.vote(f"action-{request_id}", "alice@example.com", approve=False)
    with pytest.raises(ActionRejected):
        await gov.proctor.call(
            key, "tool:refund_order", runs.append, {"order_id": 5}, request_id=request_id
        )
    assert runs == []


async def test_a_request_id_names_one_request(gov: Harness) -> None:
    """Rejoining with other parameters is refused before anything runs: the approval given to
    the first must not run the second."""
    from proctor import ConflictError

    key = await gov.new_agent(role="framework")
    request_id = f"conflict-{key.agent_id}"
    await gov.proctor.decide(key, "tool:refund_order", {"order_id": 6}, request_id=request_id)
    runs: list[int] = []
    with pytest.raises(ConflictError, match="other parameters"):
        await gov.proctor.call(
            key, "tool:refund_order", runs.append, {"order_id": 6000}, request_id=request_id
        )
    assert runs == []


def test_a_closed_client_says_so() -> None:
    from proctor.sync_client import LoopThread

    loop = LoopThread()
    loop.close()

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="closed"):
        loop.run(nothing())
