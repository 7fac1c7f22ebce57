"""Proctor for LangChain v1 and LangGraph (`pip install 'proctor[langchain]'`).

```python
agent = create_agent(model, tools, middleware=[ProctorMiddleware(key=AgentKey.from_env())])
tool_node = ToolNode([govern(refund_customer, key=key, action="refund_requests")])
```

Every tool call asks Proctor for `tool:<tool name>` (override with `action=`) with the tool's
arguments as params, and the tool runs only once allowed or approved, once. A refusal reaches
the model as an error `ToolMessage` with the verdict and reason. An escalation blocks until
decided, or, with `ProctorMiddleware(..., interrupt=True)`, pauses the run with LangGraph's
`interrupt()` until Proctor's approvers decide (the resume value never approves anything).
"""

from proctor.integrations import ActionNaming
from proctor.integrations.langchain._calls import ApprovalPending
from proctor.integrations.langchain._middleware import ProctorMiddleware
from proctor.integrations.langchain._runs import RecordedRun
from proctor.integrations.langchain._tool import GovernedTool, govern

__all__ = [
    "ActionNaming",
    "ApprovalPending",
    "GovernedTool",
    "ProctorMiddleware",
    "RecordedRun",
    "govern",
]
