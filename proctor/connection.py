"""Where an agent's `Client.connect()` finds Temporal: the address, namespace and task queue it
was given, else the environment, else the running `proctor up`.

Agent side: reads `proctor.temporal.ConnectionSettings` (plain pydantic over the environment),
never the server's settings, so an agent installs with the base dependencies only.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client as TemporalClient

from proctor.temporal import connect_temporal, connection_settings, temporal_address


@dataclass(frozen=True)
class AgentConnection:
    temporal: TemporalClient
    task_queue: str


async def connect_agent(
    address: str | None = None, *, namespace: str | None = None, task_queue: str | None = None
) -> AgentConnection:
    """Connect the way every agent process does (see `proctor.temporal` for encryption)."""
    settings = connection_settings()
    temporal = await connect_temporal(
        address or temporal_address(settings),
        namespace or settings.temporal_namespace,
        settings=settings,
    )
    return AgentConnection(temporal, task_queue or settings.task_queue)
