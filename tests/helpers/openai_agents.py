"""What tests driving a real OpenAI Agents SDK `Agent` with its `ScriptedModel` share: call
ids, and what the model was told a tool returned."""

from __future__ import annotations

import uuid
from typing import Any

from agents.testing import ScriptedModel


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def tool_output(model: ScriptedModel, call: str) -> Any:
    """What the model was told the tool returned, read from its last turn's input."""
    last = model.last_call
    assert last is not None and isinstance(last.input, list)
    for item in last.input:
        if (
            isinstance(item, dict)
            and item.get("type") == "function_call_output"
            and item.get("call_id") == call
        ):
            return item["output"]
    raise AssertionError(f"the model never saw an output for {call}")
