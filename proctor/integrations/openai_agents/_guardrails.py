"""Governance as a pair of tool guardrails, for plain function tools.

A handler-mode request waits for a process to take its permission to execute and report how
it went; an input guardrail that only looked at the decision would leave every allowed call's
workflow waiting, to end `failed` (nobody took it). So the pair carries the whole governed
call across the SDK's tool run:

- the input guardrail submits the request and blocks until it is decided. Denied, rejected,
  timed out: the call is rejected with the verdict as its output (`reject_content`), the tool
  never runs. Allowed or approved: this process takes the permission and the guardrail allows;
- the SDK runs the tool;
- the output guardrail hands the tool's output over as the result, which is reported (signed)
  and audited before the run goes on.

A tool output that never comes back (the tool raised and the run failed) is reported as a
failure after `report_within`. A tool that raises under the SDK's default
`failure_error_function` hands the error message over as its output instead, and that is what
is recorded (as completed): give the tool `failure_error_function=None` to record a failure.
Use `ProctorGuardrail.attach(tool)`: a tool carrying only the input guardrail is refused at its
first call, never run ungoverned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrail,
    ToolInputGuardrailData,
    ToolOutputGuardrail,
    ToolOutputGuardrailData,
)
from agents.exceptions import UserError

from proctor.client import Client
from proctor.errors import ActionNotCompleted, ProctorError
from proctor.integrations import Governor, tool_action, verdict_text
from proctor.integrations.openai_agents._calls import call_params, call_request_id
from proctor.signing import AgentKey

log = logging.getLogger(__name__)


class ToolOutputLost(ProctorError, RuntimeError):
    """The SDK never handed the tool's output to the output guardrail (the tool raised)."""


@dataclass
class _HeldPermission:
    """A call this process holds the permission for, while the SDK runs the tool."""

    output: asyncio.Future[Any]
    governed: asyncio.Task[Any]


class ProctorGuardrail:
    """Proctor as a tool-input and a tool-output guardrail (`.input`, `.output`); `attach`
    puts both on a tool. Actions are `tool:<name>` unless `actions` maps a tool name."""

    def __init__(
        self,
        *,
        key: AgentKey,
        client: Client | None = None,
        actions: Mapping[str, str] | None = None,
        report_within: timedelta = timedelta(hours=1),
    ) -> None:
        self._governor = Governor(key, client)
        self._actions = dict(actions or {})
        self._report_within = report_within
        self._held: dict[str, _HeldPermission] = {}
        self.input: ToolInputGuardrail[Any] = ToolInputGuardrail(self._check_call, name="proctor")
        self.output: ToolOutputGuardrail[Any] = ToolOutputGuardrail(
            self._report_output, name="proctor"
        )

    def attach(self, tool: FunctionTool) -> FunctionTool:
        """A copy of `tool` with both guardrails (input first of any it has, output last)."""
        return dataclasses.replace(
            tool,
            tool_input_guardrails=[self.input, *(tool.tool_input_guardrails or [])],
            tool_output_guardrails=[*(tool.tool_output_guardrails or []), self.output],
        )

    def action_for(self, tool_name: str) -> str:
        return self._actions.get(tool_name) or tool_action(tool_name)

    async def _check_call(self, data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        context = data.context
        self._refuse_without_output_guardrail(data.agent, context.tool_name)
        action = self.action_for(context.tool_name)
        params = call_params(context.tool_arguments)
        request_id = call_request_id(self._governor.key.agent_id, context.tool_call_id, params)
        granted = asyncio.Event()
        output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def hand_over(**_: Any) -> Any:
            granted.set()
            try:
                async with asyncio.timeout(self._report_within.total_seconds()):
                    return await output
            except TimeoutError:
                raise ToolOutputLost(
                    f"{context.tool_name}: the tool's output never reached the guardrail"
                ) from None

        governed = asyncio.create_task(
            self._governor.call(action, hand_over, params, request_id=request_id)
        )
        await _first_of(governed, granted)
        if granted.is_set():
            held = _HeldPermission(output, governed)
            self._held[context.tool_call_id] = held
            governed.add_done_callback(lambda _: self._forget(context.tool_call_id, held))
            return ToolGuardrailFunctionOutput.allow({"request_id": request_id})
        try:
            recorded = governed.result()
        except ActionNotCompleted as verdict:
            info = {"request_id": request_id, "status": verdict.status, "rule": verdict.rule_id}
            return ToolGuardrailFunctionOutput.reject_content(verdict_text(verdict, action), info)
        # Another process ran this very call: its recorded result stands, nothing runs twice.
        info = {"request_id": request_id, "status": "completed elsewhere"}
        return ToolGuardrailFunctionOutput.reject_content(str(recorded), info)

    async def _report_output(self, data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        held = self._held.pop(data.context.tool_call_id, None)
        if held is None:
            raise UserError(
                f"tool {data.context.tool_name!r} ran without Proctor's input guardrail: "
                "use ProctorGuardrail.attach(tool)"
            )
        held.output.set_result(data.output)
        await held.governed  # the result is reported and audited before the run goes on
        return ToolGuardrailFunctionOutput.allow()

    def _forget(self, call_id: str, held: _HeldPermission) -> None:
        """A held call has ended: reported, or given up because its output never came (the
        tool raised, or a later guardrail stopped it), which the workflow recorded as failed."""
        if self._held.get(call_id) is held:
            del self._held[call_id]
        if not held.governed.cancelled() and isinstance(held.governed.exception(), ToolOutputLost):
            log.warning("%s", held.governed.exception())

    def _refuse_without_output_guardrail(self, agent: Agent[Any], tool_name: str) -> None:
        for tool in agent.tools:
            if (
                isinstance(tool, FunctionTool)
                and tool.name == tool_name
                and self.output in (tool.tool_output_guardrails or [])
            ):
                return
        raise UserError(
            f"tool {tool_name!r} has Proctor's input guardrail without its output guardrail: "
            "use ProctorGuardrail.attach(tool)"
        )


async def _first_of(governed: asyncio.Task[Any], granted: asyncio.Event) -> None:
    """Wait until the call is granted (the tool may run) or governed ends without running
    it; if our caller gives up first, so does the request."""
    waiting = asyncio.create_task(granted.wait())
    try:
        await asyncio.wait({governed, waiting}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        governed.cancel()
        raise
    finally:
        waiting.cancel()
