"""What every adapter shares: action names, derived request ids, the verdict line, and a
`Governor` that connects on first use from async and sync code alike."""

from __future__ import annotations

import asyncio
import re

import pytest

from proctor import ActionDenied, ActionFailed, ActionRejected
from proctor.integrations import (
    Governor,
    _DefaultConnection,
    derive_request_id,
    http_action,
    tool_action,
    verdict_text,
)
from proctor.models import ACTION_NAME_PATTERN
from tests.helpers.harness import Harness


def test_default_action_names() -> None:
    assert tool_action("lookup_order") == "tool:lookup_order"
    assert http_action("post", "/refunds/{order_id}") == "http:POST:/refunds/:order_id"
    assert http_action("GET", "/files/{path:path}") == "http:GET:/files/:path"
    assert re.fullmatch(ACTION_NAME_PATTERN, http_action("GET", "/orders/{id:int}/lines"))


def test_derived_request_ids_are_stable_distinct_and_valid() -> None:
    first = derive_request_id("agent-1", "thread-1", "call_1")
    assert first == derive_request_id("agent-1", "thread-1", "call_1")
    assert first != derive_request_id("agent-1", "thread-1", "call_2")
    assert first != derive_request_id("agent-1", "thread-1call_1")  # parts never run together
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", first)  # what a request id may be
    with pytest.raises(ValueError, match="non-empty"):
        derive_request_id("agent-1", "")


def test_the_verdict_line_says_what_which_rule_and_why() -> None:
    denied = ActionDenied(
        "x",
        status="denied",
        workflow_id="action-1",
        rule_id="framework-no-deletes",
        reason="Agents never delete customer data",
    )
    assert verdict_text(denied, "tool:delete_customer") == (
        "Proctor denied tool:delete_customer (rule framework-no-deletes): "
        "Agents never delete customer data"
    )
    rejected = ActionRejected(
        "x", status="rejected", workflow_id="w", rule_id="r", reason="Refunds move money"
    )
    assert verdict_text(rejected, "tool:refund") == (
        "Proctor rejected tool:refund (rule r): Refunds move money"
    )
    failed = ActionFailed(
        "x", status="failed", workflow_id="w", rule_id="r", reason="ok", error="KeyError: 'id'"
    )
    assert verdict_text(failed, "tool:t").endswith("(rule r): KeyError: 'id'")


async def test_a_governor_given_a_client_serves_async_and_sync_calls(gov: Harness) -> None:
    key = await gov.new_agent(role="framework")
    governor = Governor(key, gov.proctor)

    def lookup_order(order_id: int) -> int:
        return order_id * 2

    try:
        assert await governor.call("tool:lookup_order", lookup_order, {"order_id": 2}) == 4
        value = await asyncio.to_thread(
            governor.call_sync, "tool:lookup_order", lookup_order, {"order_id": 3}
        )
        assert value == 6
        with pytest.raises(ActionDenied):
            await governor.call("tool:delete_customer", lookup_order, {"order_id": 1})
    finally:
        governor.close()


async def test_a_governor_without_a_client_connects_on_first_use(
    gov: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No client given: the first call connects the way `Client.connect()` does (here from
    TEMPORAL_ADDRESS and PROCTOR_TASK_QUEUE), in sync code too."""
    key = await gov.new_agent(role="framework")
    monkeypatch.setenv("TEMPORAL_ADDRESS", gov.proctor.temporal.service_client.config.target_host)
    monkeypatch.setenv("PROCTOR_TASK_QUEUE", gov.task_queue)
    monkeypatch.delenv("PROCTOR_PAYLOAD_KEY_DIR", raising=False)
    monkeypatch.setenv("PROCTOR_STATE_DIR", "/nonexistent/proctor-state")
    default = _DefaultConnection()  # this test's own, so no other test meets its connection
    monkeypatch.setattr("proctor.integrations._DEFAULT", default)
    governor = Governor(key)
    try:
        value = await asyncio.to_thread(
            governor.call_sync, "tool:lookup_order", lambda order_id: order_id, {"order_id": 5}
        )
        assert value == 5
        assert (await governor.client()) is governor.sync.client  # one connection for both
        assert Governor(key).sync is governor.sync  # and one for every adapter given none
    finally:
        default.close()
