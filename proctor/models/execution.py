"""The exchange that runs a permitted action: the tool call, or the agent's handler
asking for permission and reporting how it went (both signed by the agent's key)."""

from __future__ import annotations

from pydantic import Field, JsonValue

from proctor.models.base import Frozen, Jsonable
from proctor.models.outcome import ActionStatus


class ToolCall(Frozen):
    request_id: str
    action: str
    params: dict[str, JsonValue]


class ToolResult(Frozen):
    result: Jsonable = None
    """Loose: the agent's own return value (a model, a datetime, a tuple…), made JSON by the
    data converter. Refusing it here would report an action that already ran as failed."""


class PermissionRequest(Frozen):
    """Sent by the agent's client to ask whether (and when) it may run its handler; signed by
    the agent's key, so no other process can take the permission."""

    client_id: str = Field(min_length=1, max_length=128)
    workflow_id: str = ""
    signature: str = Field(default="", max_length=4096)

    def signing_payload(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json", exclude={"signature"})


class Permission(Frozen):
    granted: bool
    claim_token: str | None = None
    """Present when granted: the report must carry it, so only one process executes."""
    status: ActionStatus | None = None
    """When not granted: the final status the action is heading to, if known."""
    reason: str = ""
    stage: str | None = None
    """Where the request stood when this answer was given (e.g. `executing`)."""


class HandlerReport(Frozen):
    """How the handler went; signed by the agent's key, so nobody else can report for it."""

    claim_token: str
    succeeded: bool
    result: Jsonable = None
    """Loose, like `ToolResult.result`."""
    error: str | None = Field(default=None, max_length=8000)
    signature: str = Field(default="", max_length=4096)

    def signing_payload(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json", exclude={"signature"})
