"""Proctor for the OpenAI Agents SDK (`pip install proctor[openai-agents]`).

Each tool call is one Proctor request: action `tool:<name>` (or `action=`), params the call's
arguments as the model sent them, request id derived from the agent, the tool call id and the
arguments (`call_request_id`), so a resumed or re-run call joins its first request instead
of asking twice.

- `governed_tool(fn, key=key)`, `@proctor_tool(key=key)`, `govern(tool, key=key)`: the SDK's
  `FunctionTool`, same schema, whose body runs only once Proctor allows it. A denial,
  rejection or timeout is the tool's output (one line for the model); the run goes on.
- `interrupt=True`: an escalated call pauses the run as the SDK's approval interruption
  (`result.interruptions`); `interruption_progress(item, key=key)` gives Proctor's pending
  approval; after `state.approve(item)` the resumed tool still runs only if Proctor approved.
- `ProctorGuardrail(key=key).attach(tool)`: the same governance as a tool-input guardrail
  (rejects with the verdict) paired with a tool-output guardrail (reports the result).
- `governed_activity(fn, key=key)`: an activity for Temporal's OpenAI Agents plugin
  (`activity_as_tool`), governed with a request id that survives the activity's retries; it
  may replace a plain `@activity.defn fn` under the same name on the agent's worker.
"""

from proctor.integrations.openai_agents._activities import governed_activity
from proctor.integrations.openai_agents._approval import (
    ProctorApprovalCheck,
    interruption_progress,
    interruption_workflow_id,
)
from proctor.integrations.openai_agents._calls import call_request_id
from proctor.integrations.openai_agents._guardrails import ProctorGuardrail, ToolOutputLost
from proctor.integrations.openai_agents._tools import govern, governed_tool, proctor_tool

__all__ = [
    "ProctorApprovalCheck",
    "ProctorGuardrail",
    "ToolOutputLost",
    "call_request_id",
    "govern",
    "governed_activity",
    "governed_tool",
    "interruption_progress",
    "interruption_workflow_id",
    "proctor_tool",
]
