"""A governed action's Temporal history, told as a timeline a person can read.

Pure: it reads the recorded events (never the live workflow), so it tells what happened even
for a workflow whose code has changed since, and it works the same on an exported file. It reads
clear payloads: decrypt an encrypted history first (`proctor.history.payloads`); a payload
still encrypted is told as such, naming its key, instead of failing the whole story.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import Field
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from proctor.contract import (
    DECIDE_SIGNAL,
    RECORD_AUDIT,
    RECORD_OUTCOME,
    REINSTATE_AGENT,
    REPORT_RESULT_UPDATE,
    REQUEST_PERMISSION_UPDATE,
)
from proctor.history.results import decode, duration, outcome_text, result_texts
from proctor.models import (
    AuditEvent,
    AuditReceipt,
    Frozen,
    GovernedActionInput,
    HandlerReport,
    OutcomeRecord,
    Vote,
)

LOCAL_ACTIVITY_MARKER = "core_local_activity"
UNNAMED_STEP = "a step"
"""What an audit step is called when the history alone can't say: a local activity's marker
records its result (the row's seq), not its input (the event)."""
PATCH_MARKER = "core_patch"


class StepKind(StrEnum):
    """What a timeline step is: its `kind` in `proctor history show --json`."""

    STARTED = "started"
    ACTIVITY = "activity"
    AUDIT = "audit"
    FAILURE = "failure"
    PATCH = "patch"
    TIMER = "timer"
    VOTE = "vote"
    SIGNAL = "signal"
    HANDLER = "handler"
    UPDATE = "update"
    OUTCOME = "outcome"


CLOSED_AS: dict[int, str] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "COMPLETED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "FAILED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "TERMINATED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "TIMED_OUT",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "CANCELED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}
"""The events that close a run, and how the run closed."""


class TimelineStep(Frozen):
    """One thing that happened, at the history event that records it."""

    event_id: int
    at: datetime
    kind: StepKind
    text: str
    audit_seq: int | None = None
    """The audit row this step wrote, when it is an audit append."""
    audited: str | None = Field(default=None, exclude=True)
    """What that row records (its event type) when the history says; None when only the
    ledger can (`name_audit_steps`). Told in `text`, so left out of the JSON."""


def audit_text(audited: str | None, seq: int | None) -> str:
    """How an audit step reads: what it wrote, and where."""
    return f"audited {audited or UNNAMED_STEP} as row #{seq}"


def _event_type_of_event(given: Payloads | None) -> str | None:
    event = decode(given, AuditEvent)
    return event.event_type if isinstance(event, AuditEvent) else None


def _event_type_of_outcome(given: Payloads | None) -> str | None:
    record = decode(given, OutcomeRecord)
    return record.event.event_type if isinstance(record, OutcomeRecord) else None


_AUDITED: dict[str, Callable[[Payloads | None], str | None]] = {
    RECORD_AUDIT: _event_type_of_event,
    RECORD_OUTCOME: _event_type_of_outcome,
    REINSTATE_AGENT: lambda _: "reinstatement",
}
"""The activities that append an audit row, and what the row records, read from their input
(None when the input isn't in the history: a local activity's marker holds only its result)."""


class _Reader:
    """Walks the events once, remembering what each completion answers."""

    def __init__(self) -> None:
        self.steps: list[TimelineStep] = []
        self.scheduled: dict[int, tuple[str, Payloads]] = {}
        self.timers: dict[str, float] = {}

    def add(
        self,
        event: HistoryEvent,
        kind: StepKind,
        text: str,
        *,
        audit_seq: int | None = None,
        audited: str | None = None,
    ) -> None:
        self.steps.append(
            TimelineStep(
                event_id=event.event_id,
                at=event.event_time.ToDatetime(tzinfo=UTC),
                kind=kind,
                text=text,
                audit_seq=audit_seq,
                audited=audited,
            )
        )

    def read(self, event: HistoryEvent) -> None:
        handler = _HANDLERS.get(event.event_type)
        if handler is not None:
            handler(self, event)

    def started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        start = decode(attrs.input, GovernedActionInput)
        if isinstance(start, GovernedActionInput):
            request = start.request
            text = (
                f"request {request.request_id}: agent {request.agent_id} asks "
                f"{request.action} {request.params} ({request.execution.mode.value})"
            )
            if request.delegation:
                chain = (link.principal for link in request.delegation)
                text += f" on behalf of {' → '.join(chain)} (delegated)"
            elif request.triggered_by:
                text += f" on behalf of {request.triggered_by}"
        else:
            text = f"{attrs.workflow_type.name} started with {start}"
        self.add(event, StepKind.STARTED, text)

    def scheduled_activity(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        self.scheduled[event.event_id] = (attrs.activity_type.name, attrs.input)

    def completed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_completed_event_attributes
        name, given = self.scheduled.get(attrs.scheduled_event_id, ("?", Payloads()))
        self._answered(event, name, given, attrs.result)

    def _answered(
        self, event: HistoryEvent, name: str, given: Payloads | None, result: Payloads | None
    ) -> None:
        audited = _AUDITED.get(name)
        if audited is not None:
            receipt = decode(result, AuditReceipt)
            seq = receipt.seq if isinstance(receipt, AuditReceipt) else None
            what = audited(given)
            self.add(event, StepKind.AUDIT, audit_text(what, seq), audit_seq=seq, audited=what)
            return
        for text in result_texts(name, result):
            self.add(event, StepKind.ACTIVITY, text)

    def failed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_failed_event_attributes
        name, _ = self.scheduled.get(attrs.scheduled_event_id, ("?", Payloads()))
        self.add(event, StepKind.FAILURE, f"{name} FAILED for good: {attrs.failure.message}")

    def timed_out(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_timed_out_event_attributes
        name, _ = self.scheduled.get(attrs.scheduled_event_id, ("?", Payloads()))
        self.add(event, StepKind.FAILURE, f"{name} TIMED OUT: {attrs.failure.message}")

    def marker(self, event: HistoryEvent) -> None:
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name == PATCH_MARKER:
            self.add(event, StepKind.PATCH, f"code version marker: patched {patch_id(event)!r}")
        elif attrs.marker_name == LOCAL_ACTIVITY_MARKER:
            data = decode(attrs.details.get("data"))
            name = data.get("activity_type", "?") if isinstance(data, dict) else "?"
            if attrs.HasField("failure"):
                self.add(event, StepKind.FAILURE, f"{name} FAILED: {attrs.failure.message}")
            else:
                self._answered(event, name, None, attrs.details.get("result"))

    def timer_started(self, event: HistoryEvent) -> None:
        attrs = event.timer_started_event_attributes
        self.timers[attrs.timer_id] = attrs.start_to_fire_timeout.ToTimedelta().total_seconds()

    def timer_fired(self, event: HistoryEvent) -> None:
        """How long the timer waited; not what for (reminder, ladder step or deadline): the
        workflow gives its timers no summary, so the history doesn't say."""
        timer_id = event.timer_fired_event_attributes.timer_id
        waited = self.timers.get(timer_id)
        self.add(
            event,
            StepKind.TIMER,
            "timer fired" + (f" after {duration(waited)}" if waited is not None else ""),
        )

    def signaled(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_signaled_event_attributes
        if attrs.signal_name == DECIDE_SIGNAL:
            vote = decode(attrs.input, Vote)
            if isinstance(vote, Vote):
                text = (
                    f"vote: {vote.approver} {'APPROVES' if vote.approve else 'DENIES'} "
                    f"via {vote.channel}" + (f": {vote.note}" if vote.note else "")
                )
                self.add(event, StepKind.VOTE, text)
                return
        self.add(event, StepKind.SIGNAL, f"signal {attrs.signal_name}: {decode(attrs.input)}")

    def update_accepted(self, event: HistoryEvent) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        name = request.input.name
        if name == REQUEST_PERMISSION_UPDATE:
            self.add(event, StepKind.HANDLER, "the agent's handler asks for permission to run")
        elif name == REPORT_RESULT_UPDATE:
            report = decode(request.input.args, HandlerReport)
            ok = isinstance(report, HandlerReport) and report.succeeded
            self.add(
                event,
                StepKind.HANDLER,
                "the agent's handler reports "
                + ("success" if ok else f"failure: {getattr(report, 'error', report)}"),
            )
        else:
            self.add(event, StepKind.UPDATE, f"update {name}")

    def closed(self, event: HistoryEvent) -> None:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            text = outcome_text(decode(event.workflow_execution_completed_event_attributes.result))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = event.workflow_execution_failed_event_attributes.failure
            text = f"workflow FAILED: {failure.message}"
        else:
            text = (
                f"workflow {EventType.Name(event.event_type).removeprefix('EVENT_TYPE_WORKFLOW_')}"
            )
        self.add(event, StepKind.OUTCOME, text)


def patch_id(event: HistoryEvent) -> str | None:
    """The id a `workflow.patched(...)` marker records (None for other events)."""
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != PATCH_MARKER:
        return None
    patch = decode(attrs.details.get("patch-data"))
    return str(patch.get("id")) if isinstance(patch, dict) else None


_HANDLERS: dict[int, Callable[[_Reader, HistoryEvent], None]] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: _Reader.started,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: _Reader.scheduled_activity,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: _Reader.completed,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: _Reader.failed,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: _Reader.timed_out,
    EventType.EVENT_TYPE_MARKER_RECORDED: _Reader.marker,
    EventType.EVENT_TYPE_TIMER_STARTED: _Reader.timer_started,
    EventType.EVENT_TYPE_TIMER_FIRED: _Reader.timer_fired,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: _Reader.signaled,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: _Reader.update_accepted,
    **dict.fromkeys(CLOSED_AS, _Reader.closed),
}


def timeline(history: WorkflowHistory | Sequence[HistoryEvent]) -> list[TimelineStep]:
    """Every meaningful step of the history, in event order."""
    events = history.events if isinstance(history, WorkflowHistory) else history
    reader = _Reader()
    for event in events:
        reader.read(event)
    return reader.steps


def name_audit_steps(steps: list[TimelineStep], event_types: dict[int, str]) -> list[TimelineStep]:
    """Fill in what each audit step wrote, from the audit rows themselves (seq -> type)."""
    return [_named(step, event_types) for step in steps]


def _named(step: TimelineStep, event_types: dict[int, str]) -> TimelineStep:
    if step.kind is not StepKind.AUDIT or step.audited is not None or step.audit_seq is None:
        return step
    known = event_types.get(step.audit_seq)
    if known is None:
        return step
    return step.model_copy(update={"audited": known, "text": audit_text(known, step.audit_seq)})


def describe_event(history: WorkflowHistory, event_id: int) -> str:
    """What event `event_id` is: its type and, when it is a step, what the step did."""
    events = {e.event_id: e for e in history.events}
    event = events.get(event_id)
    if event is None:
        return f"event {event_id} (not in the history)"
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        name += f" {event.activity_task_scheduled_event_attributes.activity_type.name}"
    step = next(
        (
            s
            for s in timeline(history.events[: _index(history, event_id) + 1])
            if s.event_id == event_id
        ),
        None,
    )
    return f"event {event_id} {name}" + (f": {step.text}" if step else "")


def _index(history: WorkflowHistory, event_id: int) -> int:
    return next(i for i, e in enumerate(history.events) if e.event_id == event_id)
