"""What an agent signs is validated JSON; what code returns is made JSON on the way. Both
cross Temporal's pydantic data converter unchanged, signature and all."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from proctor.models import (
    ACTION_GLOB_PATTERN,
    ACTION_NAME_PATTERN,
    ActionRequest,
    ExecutionMode,
    ExecutionSpec,
    HandlerReport,
    ToolResult,
)
from proctor.signing import AgentKey, verify_request

T = TypeVar("T")

NESTED: dict[str, Any] = {
    "order": {"id": 12345, "lines": [{"sku": "A-1", "qty": 2, "price": 9.5}, None]},
    "refund": -0.25,
    "largest_safe_integer": 2**53 - 1,
    "flags": [True, False, None],
    "empty": {"list": [], "dict": {}},
    "note": "naïve — ünïcode",
}


def round_trip(value: T, as_type: type[T]) -> T:
    converter = pydantic_data_converter.payload_converter
    [decoded] = converter.from_payloads(converter.to_payloads([value]), [as_type])
    decoded_value: T = decoded
    return decoded_value


def test_nested_params_cross_the_converter_unchanged_and_still_verify() -> None:
    key = AgentKey.generate("json-agent", "ed25519")
    request = key.new_request("crm.update", NESTED, ExecutionSpec(mode=ExecutionMode.HANDLER))

    received = round_trip(request, ActionRequest)

    assert received == request
    assert received.params == NESTED
    assert verify_request(received, key.public_key_pem)


@pytest.mark.parametrize("value", [object(), {1, 2}, datetime(2024, 1, 1, tzinfo=UTC)])
def test_params_that_are_not_json_are_refused_when_the_request_is_made(value: object) -> None:
    key = AgentKey.generate("json-agent", "ed25519")
    with pytest.raises(ValidationError, match="valid JSON value"):
        key.new_request("crm.update", {"x": value}, ExecutionSpec(mode=ExecutionMode.TOOL))


def test_a_returned_value_is_taken_as_is_and_arrives_as_json() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

    report = HandlerReport(claim_token="t", succeeded=True, result={"at": when, "ids": (1, 2)})
    tool = ToolResult(result=(when, None))

    assert round_trip(report, HandlerReport).result == {"at": "2024-05-06T07:08:09Z", "ids": [1, 2]}
    assert round_trip(tool, ToolResult).result == ["2024-05-06T07:08:09Z", None]
    assert report.signing_payload()["result"] == {"at": "2024-05-06T07:08:09Z", "ids": [1, 2]}


@pytest.mark.parametrize(
    ("text", "is_name", "is_glob"),
    [
        ("crm.delete_customer", True, True),
        ("svc:/billing/refund-2", True, True),
        ("crm.*", False, True),
        ("*", False, True),
        ("a" * 200, True, True),
        ("a" * 201, False, False),
        ("", False, False),
        ("crm delete", False, False),
        ("crm.é", False, False),
    ],
)
def test_one_action_alphabet_for_names_and_policy_patterns(
    text: str, is_name: bool, is_glob: bool
) -> None:
    assert bool(re.match(ACTION_NAME_PATTERN, text)) is is_name
    assert bool(re.match(ACTION_GLOB_PATTERN, text)) is is_glob
    spec = ExecutionSpec(mode=ExecutionMode.TOOL)
    key = AgentKey.generate("json-agent", "ed25519")
    if is_name:
        assert key.new_request(text, {}, spec).action == text
    else:
        with pytest.raises(ValidationError):
            key.new_request(text, {}, spec)
