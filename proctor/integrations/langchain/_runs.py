"""Running a tool through Proctor: the tool's own output when it ran here, else what Proctor
recorded of the run another process made for the same request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

from langchain_core.messages import ToolMessage
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict

from proctor.integrations import Governor

Output = TypeVar("Output")


class RecordedRun(BaseModel):
    """What Proctor records as a governed tool's result: the content the model was given, so a
    process that joins a request an earlier one ran (a crash between the run and the answer)
    answers the model the same way, without running the tool again."""

    model_config = ConfigDict(frozen=True)

    content: str | list[str | dict[str, Any]]
    status: Literal["success", "error"] = "success"

    @classmethod
    def of(cls, output: object) -> RecordedRun:
        message = _tool_message_in(output)
        if message is None:
            return cls(content=output if isinstance(output, str) else repr(output))
        return cls(content=message.content, status=message.status)

    def message(self, tool_call_id: str, name: str) -> ToolMessage:
        return ToolMessage(
            content=self.content, tool_call_id=tool_call_id, name=name, status=self.status
        )


def _tool_message_in(output: object) -> ToolMessage | None:
    """The message a tool answered with: its ToolMessage, or the one a Command adds."""
    if isinstance(output, ToolMessage):
        return output
    if isinstance(output, Command) and isinstance(output.update, Mapping):
        for message in output.update.get("messages") or ():
            if isinstance(message, ToolMessage):
                return message
    return None


async def run_governed(
    governor: Governor,
    action: str,
    params: Mapping[str, Any],
    request_id: str,
    run: Callable[[], Awaitable[Output]],
) -> Output | RecordedRun:
    """`run()` once Proctor allows `action` (after approval if escalated); raises the typed
    `ActionNotCompleted` otherwise, and whatever `run()` raised."""
    outputs: list[Output] = []

    async def execute(**_params: Any) -> RecordedRun:
        output = await run()
        outputs.append(output)
        return RecordedRun.of(output)

    recorded: RecordedRun = await governor.call(
        action, execute, params, request_id=request_id, result_type=RecordedRun
    )
    return outputs[0] if outputs else recorded


def run_governed_sync(
    governor: Governor,
    action: str,
    params: Mapping[str, Any],
    request_id: str,
    run: Callable[[], Output],
) -> Output | RecordedRun:
    """`run_governed`, blocking; `run()` runs in the calling thread (usable inside a running
    event loop)."""
    outputs: list[Output] = []

    def execute(**_params: Any) -> RecordedRun:
        output = run()
        outputs.append(output)
        return RecordedRun.of(output)

    recorded: RecordedRun = governor.call_sync(
        action, execute, params, request_id=request_id, result_type=RecordedRun
    )
    return outputs[0] if outputs else recorded
