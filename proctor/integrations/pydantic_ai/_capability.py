"""Every tool of an agent governed in one line: a capability wrapping the toolset the agent
assembles for each run (its own tools and every toolset it runs with) in `ProctorToolset`."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import AbstractToolset

from proctor.client import Client
from proctor.integrations import ActionNaming, Governor, action_namer, tool_action
from proctor.integrations.pydantic_ai._calls import (
    ActionNamer,
    governor_for,
)
from proctor.integrations.pydantic_ai._toolset import ProctorToolset
from proctor.signing import AgentKey


@dataclass(init=False)
class ProctorCapability(AbstractCapability[AgentDepsT]):
    """Governs every tool call of an agent:
    `Agent(model, tools=[...], capabilities=[ProctorCapability(key=key)])`. Same options as
    `ProctorToolset`; one client for all runs."""

    governor: Governor = field(repr=False)
    action: ActionNamer = tool_action
    defer_escalations: bool | None = None

    def __init__(
        self,
        *,
        key: AgentKey | None = None,
        client: Client | None = None,
        governor: Governor | None = None,
        action: ActionNaming = tool_action,
        defer_escalations: bool | None = None,
    ) -> None:
        self.governor = governor_for(key, client, governor)
        self.action = action_namer(action)
        self.defer_escalations = defer_escalations

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a private key and a live client: not for agent spec files

    def get_wrapper_toolset(
        self, toolset: AbstractToolset[AgentDepsT]
    ) -> AbstractToolset[AgentDepsT] | None:
        return ProctorToolset(
            toolset,
            governor=self.governor,
            action=self.action,
            defer_escalations=self.defer_escalations,
        )
