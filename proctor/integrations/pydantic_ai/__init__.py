"""Proctor for PydanticAI: every tool call an agent makes is a governed Proctor request.

```python
agent = Agent(model, tools=[refund_order], capabilities=[ProctorCapability(key=key)])
```

The action is `tool:<name>` (or `action=`'s name for the tool) and the params are the tool's
arguments as PydanticAI validated them. The tool runs in this process only once Proctor allows
it. A denial, rejection or timeout reaches the model as the call's failed result saying why
(`ToolFailed`: not a retry prompt, the run goes on and the model adapts). An escalation blocks
the call until decided; when the run's output types include `DeferredToolRequests`, it ends the
run with the call awaiting approval instead (`ApprovalRequired`; `ApprovalPending.of(...)`
reads the request back from its metadata). The resumed run re-checks with Proctor: the tool runs
only if Proctor approved it, whatever the app's `DeferredToolResults` says (a local denial never
runs it). A call's request id comes from the agent, the conversation and the tool call id, so a
re-run of the same call after a crash joins the request instead of asking twice.

`ProctorCapability` governs all of an agent's tools (it wraps the toolset the agent assembles
for each run); `ProctorToolset` governs one toolset. Tools run at the model provider (native
tools: web search, code execution) are outside any toolset and are not governed; output tools
are the run's answer, not tool calls, and are not either.
"""

from proctor.integrations import ActionNaming, action_namer
from proctor.integrations.pydantic_ai._calls import (
    ActionNamer,
    allows_deferred_tools,
    governor_for,
    tool_call_request_id,
)
from proctor.integrations.pydantic_ai._capability import ProctorCapability
from proctor.integrations.pydantic_ai._pending import METADATA_KEY, ApprovalPending
from proctor.integrations.pydantic_ai._toolset import ProctorToolset

__all__ = [
    "METADATA_KEY",
    "ActionNamer",
    "ActionNaming",
    "ApprovalPending",
    "ProctorCapability",
    "ProctorToolset",
    "action_namer",
    "allows_deferred_tools",
    "governor_for",
    "tool_call_request_id",
]
