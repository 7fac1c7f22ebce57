"""What an agent sends to start a governed action: the signed request and how it runs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from proctor.models.base import ACTION_NAME_PATTERN, AGENT_ID_PATTERN, Frozen
from proctor.models.delegation import DelegationLink


class ExecutionMode(StrEnum):
    HANDLER = "handler"
    """The agent's own process runs the action once the workflow grants permission."""
    TOOL = "tool"
    """The workflow runs the action as an activity on the agent's task queue."""


class ExecutionSpec(Frozen):
    mode: ExecutionMode
    task_queue: str | None = None
    """For TOOL mode: the agent's task queue where the tool activity is registered."""
    timeout_seconds: float = Field(default=3600.0, gt=0)
    """HANDLER: how long the workflow waits for the agent's report once permitted.
    TOOL: the limit of one attempt of the tool activity."""
    max_attempts: int = Field(default=3, ge=1, le=100)
    """TOOL: attempts of the tool activity before the action counts as failed."""
    executor: str | None = Field(default=None, pattern=AGENT_ID_PATTERN)
    """HANDLER: the registered execution service (e.g. the web API the agent calls) whose key,
    not the agent's, takes the permission and signs the report. The agent signs its name into
    the request: it consents that this service, and no other, executes the action."""

    @model_validator(mode="after")
    def _executor_needs_handler_mode(self) -> ExecutionSpec:
        if self.executor is not None and self.mode is not ExecutionMode.HANDLER:
            raise ValueError("executor= is for handler mode: a tool runs on the agent's queue")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_executor(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No `executor` key when there is none: requests signed before the field existed
        keep their exact signing payload (and digest), so they still verify."""
        data: dict[str, Any] = dump(self)
        if data.get("executor") is None:
            data.pop("executor", None)
        return data


class ActionRequest(Frozen):
    """What an agent asks to do. Every field but `signature` is covered by the signature."""

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    action: str = Field(pattern=ACTION_NAME_PATTERN)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    requested_at: datetime
    nonce: str = Field(min_length=16, max_length=128)
    execution: ExecutionSpec
    triggered_by: str | None = Field(default=None, min_length=1, max_length=256)
    """The human on whose behalf the agent acts, if any: never an approver of this request."""
    on_behalf_of: str | None = Field(default=None, min_length=1, max_length=256)
    """The principal the delegation chain starts from (its first link's delegator)."""
    delegation: tuple[DelegationLink, ...] = Field(default=(), max_length=16)
    """The signed links from `on_behalf_of` down to this agent, root first."""
    signature: str = Field(default="", max_length=4096)
    """Base64 signature over the RFC 8785 canonical JSON of `signing_payload()`."""

    @field_validator("requested_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("requested_at must carry a timezone")
        return value.astimezone(UTC)

    def signing_payload(self) -> dict[str, JsonValue]:
        """The exact document an agent signs: the whole request except the signature."""
        payload = self.model_dump(mode="json", exclude={"signature"})
        if payload["triggered_by"] is None:
            del payload["triggered_by"]  # requests signed before the field existed still verify
        for optional in ("on_behalf_of", "delegation"):
            if not payload[optional]:
                del payload[optional]
        return payload

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.request_id)


def workflow_id_for(request_id: str) -> str:
    return f"action-{request_id}"


class GovernedActionInput(Frozen):
    request: ActionRequest
