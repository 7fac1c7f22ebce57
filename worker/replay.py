"""Replaying recorded histories against today's workflow code, to prove a deploy is safe.

Temporal's Replayer re-runs the workflow code over each history; a command the code emits that
the history did not record (or the other way round) is a non-determinism error, which would
stall that workflow in production. We report it with the event where the two diverge.

An encrypted history replays with the converter holding the key ring (the Replayer decodes each
payload on its way into the workflow, as a worker does); the diverging event is described from
a decrypted copy.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from functools import cache

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from proctor.history.payloads import decode_history
from proctor.history.timeline import describe_event, patch_id
from proctor.models import Frozen
from proctor_server.workflows.governed_action import GovernedActionWorkflow
from proctor_server.workflows.reinstatement import ReinstatementWorkflow

_MESSAGE = re.compile(r'message: "(.*?)", source:', re.DOTALL)
_EVENT_ID = re.compile(r"HistoryEvent\(id: (\d+)")
_BOOKKEEPING = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


class ReplayReport(Frozen):
    """One history's replay: whether today's code reproduces it, and if not, where not."""

    workflow_id: str
    deterministic: bool
    error: str | None = None
    event_id: int | None = None
    event: str | None = None
    """The diverging event, described (type, and what the step did)."""


@cache
def _quiet_runtime() -> Runtime:
    """A runtime that doesn't log each failing replay task: the report says it once."""
    return Runtime(telemetry=TelemetryConfig(logging=None))


def replayer(converter: DataConverter = pydantic_data_converter) -> Replayer:
    """`converter`: the process's own (`proctor.temporal.data_converter`) to replay encrypted
    histories; the default reads clear ones only."""
    return Replayer(
        workflows=[GovernedActionWorkflow, ReinstatementWorkflow],
        data_converter=converter,
        runtime=_quiet_runtime(),
    )


def failure_message(error: BaseException) -> str:
    """The readable part of a replay failure (the SDK wraps it in a debug dump)."""
    found = _MESSAGE.search(str(error))
    return found.group(1) if found else str(error)


async def _fails(replay: Replayer, history: WorkflowHistory, end: int) -> bool:
    prefix = WorkflowHistory(history.workflow_id, history.events[: end + 1])
    result = await replay.replay_workflow(prefix, raise_on_replay_failure=False)
    return result.replay_failure is not None


async def locate(replay: Replayer, history: WorkflowHistory, message: str) -> int | None:
    """The event where today's code parts from the history.

    The SDK names the event only for some kinds of mismatch; otherwise we bisect: replaying
    the history cut after each workflow task finds the first task whose commands differ, and
    among its recorded commands the one the message names (else its first)."""
    named = _EVENT_ID.search(message)
    if named is not None:
        return int(named.group(1))
    events = history.events
    cuts = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ] + [len(events) - 1]
    low, high = 0, len(cuts) - 1  # invariant: the cut at `high` fails
    while low < high:
        middle = (low + high) // 2
        if await _fails(replay, history, cuts[middle]):
            high = middle
        else:
            low = middle + 1
    start = cuts[high - 1] + 1 if high > 0 else 0
    commands = [e for e in events[start : cuts[high] + 1] if e.event_type not in _BOOKKEEPING]
    if not commands:
        return None
    chosen = next((e for e in commands if _named_in(e, message)), commands[0])
    return chosen.event_id


def _named_in(event: HistoryEvent, message: str) -> bool:
    """The message names this command: its activity type, or its patch id."""
    name = event.activity_task_scheduled_event_attributes.activity_type.name
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        patch = patch_id(event)
        name = patch or ""
    return (
        bool(name) and re.search(rf"(?<![\w.:-]){re.escape(name)}(?![\w.:-])", message) is not None
    )


async def replay_one(history: WorkflowHistory, replay: Replayer | None = None) -> ReplayReport:
    replay = replay or replayer()
    result = await replay.replay_workflow(history, raise_on_replay_failure=False)
    failure = result.replay_failure
    if failure is None:
        return ReplayReport(workflow_id=history.workflow_id, deterministic=True)
    message = failure_message(failure)
    event_id = await locate(replay, history, message)
    kind = "non-determinism" if isinstance(failure, NondeterminismError) else "replay failed"
    converter = replay.config().get("data_converter") or pydantic_data_converter
    readable = await decode_history(history, converter.payload_codec)
    return ReplayReport(
        workflow_id=history.workflow_id,
        deterministic=False,
        error=f"{kind}: {message}",
        event_id=event_id,
        event=describe_event(readable, event_id) if event_id is not None else None,
    )


async def replay_all(
    histories: AsyncIterator[WorkflowHistory] | Iterable[WorkflowHistory],
    converter: DataConverter = pydantic_data_converter,
) -> AsyncIterator[ReplayReport]:
    """Each history's report, as it is replayed (one replayer for all of them)."""
    replay = replayer(converter)
    if isinstance(histories, AsyncIterator):
        async for history in histories:
            yield await replay_one(history, replay)
    else:
        for history in histories:
            yield await replay_one(history, replay)
