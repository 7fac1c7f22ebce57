"""Decrypting a whole recorded history, for the people allowed to read it.

Temporal hands back history as it stores it: every payload encrypted by Proctor's codec. The
SDK decodes payloads only on their way into workflow code, so `proctor history` decodes the
events itself: it walks each event's protobuf for every `Payload` (inputs, results, markers,
signals, updates, memos, failure details) and runs them through the codec, then puts back the
message and stack trace a failure carried in its encrypted attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec


def _children(message: Message) -> Iterator[Message]:
    """The messages directly inside `message`: singular, repeated and map values."""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            values = list(value.values())
        else:
            values = list(value) if field.is_repeated else [value]
        yield from (v for v in values if isinstance(v, Message))


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload inside `message`, at any depth."""
    for child in _children(message):
        if isinstance(child, Payload):
            yield child
        else:
            yield from payloads_in(child)


def failures_in(message: Message) -> Iterator[Failure]:
    """Every Failure inside `message`, causes included."""
    for child in _children(message):
        if isinstance(child, Failure):
            yield child
        if not isinstance(child, Payload):
            yield from failures_in(child)


async def decode_events(events: list[HistoryEvent], codec: PayloadCodec) -> list[HistoryEvent]:
    """Copies of `events` with every payload decoded (clear payloads stay as they are)."""
    copies = []
    for event in events:
        copy = HistoryEvent()
        copy.CopyFrom(event)
        copies.append(copy)
    found = [p for copy in copies for p in payloads_in(copy)]
    for payload, decoded in zip(found, await codec.decode(found), strict=True):
        if decoded is not payload:
            payload.CopyFrom(decoded)
    for copy in copies:
        for failure in failures_in(copy):
            _restore_attributes(failure)
    return copies


async def decode_history(history: WorkflowHistory, codec: PayloadCodec | None) -> WorkflowHistory:
    """The history with its payloads readable (unchanged when there is no codec)."""
    if codec is None:
        return history
    return WorkflowHistory(history.workflow_id, await decode_events(list(history.events), codec))


def _restore_attributes(failure: Failure) -> None:
    """A failure's message and stack trace, moved back out of its (now decoded) attributes."""
    if not failure.HasField("encoded_attributes"):
        return
    try:
        attributes = json.loads(failure.encoded_attributes.data)
    except ValueError:
        return  # still encrypted (no key), or not ours: leave it as recorded
    if isinstance(attributes, dict):
        failure.message = str(attributes.get("message", failure.message))
        failure.stack_trace = str(attributes.get("stack_trace", failure.stack_trace))
        failure.ClearField("encoded_attributes")
