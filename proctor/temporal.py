"""Connecting to Temporal the one way every Proctor process must: with the pydantic converter
and, where a payload key ring is configured, the encryption codec.

Fail-closed rule: encryption is on for a deployment once it says so, by setting
PROCTOR_PAYLOAD_KEY_DIR or by running the embedded stack (`proctor up` creates the ring in its
state dir and records itself in stack.json). From then on every process that connects (worker,
CLI, an agent's `Client.connect()`) refuses to start without the ring, rather than write clear
text beside encrypted history or fail on the first encrypted payload it meets. A process for
which nothing says so (no key dir set, no stack) connects without encryption and logs a warning
once; a worker that must never do so asks for `require_payload_keys=True`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from proctor import payload_keys
from proctor.codec import EncryptionCodec, LockedCodec
from proctor.errors import UnavailableError
from proctor.payload_keys import KeyRing, PayloadKeysMissing
from proctor.settings import ProctorSettings, payload_key_dir, read_stack, stack_file

log = logging.getLogger(__name__)


class TemporalUnavailable(UnavailableError):
    """Temporal could not be reached; the message says where and how to fix it."""


def encrypted_converter(ring: KeyRing) -> DataConverter:
    """pydantic + AES-GCM on every payload; failure messages and stack traces move into an
    encrypted payload too (an exception's text can quote a parameter)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def payload_keys_required(settings: ProctorSettings) -> str | None:
    """Why this process must have the key ring (None: nothing says encryption is on)."""
    if settings.payload_key_dir is not None:
        return "PROCTOR_PAYLOAD_KEY_DIR is set"
    if read_stack(settings) is not None:
        return f"the embedded stack ({stack_file(settings)}) encrypts history"
    return None


def data_converter(
    settings: ProctorSettings | None = None, *, require_payload_keys: bool = False
) -> DataConverter:
    """The converter for this process: encrypting with the configured ring; without one,
    clear (refused when the ring is required, see the module's rule)."""
    settings = settings or ProctorSettings()
    directory = payload_key_dir(settings)
    if payload_keys.exists(directory):
        return encrypted_converter(payload_keys.load(directory))
    reason = (
        "this process requires them" if require_payload_keys else payload_keys_required(settings)
    )
    if reason is not None:
        raise PayloadKeysMissing(
            f"{directory}: no payload keys, and {reason}: create them with `proctor "
            "payload-key create` (once, for the whole deployment) or point "
            "PROCTOR_PAYLOAD_KEY_DIR at the ring the workers use"
        )
    _warn_clear(str(directory))
    return dataclasses.replace(pydantic_data_converter, payload_codec=LockedCodec(str(directory)))


@cache
def _warn_clear(directory: str) -> None:
    # Said once per process, quietly: a worker says it loudly at start (worker/main.py), and
    # every short CLI command would otherwise print it.
    log.info(
        "no payload keys in %s: workflow inputs and results go to Temporal in clear "
        "text (create a ring with `proctor payload-key create`)",
        directory,
    )


async def connect_temporal(
    address: str,
    namespace: str = "default",
    runtime: Runtime | None = None,
    *,
    converter: DataConverter | None = None,
    settings: ProctorSettings | None = None,
    require_payload_keys: bool = False,
) -> Client:
    """`runtime`: one exporting the SDK's metrics (default: the SDK's default runtime);
    `converter`: given explicitly (tests, benchmarks), else `data_converter(settings)`."""
    converter = converter or data_converter(settings, require_payload_keys=require_payload_keys)
    try:
        return await Client.connect(
            address, namespace=namespace, data_converter=converter, runtime=runtime
        )
    except RuntimeError as exc:
        raise TemporalUnavailable(
            f"cannot connect to Temporal at {address} (namespace {namespace}): {exc}. Start it "
            "with `proctor up`, or set TEMPORAL_ADDRESS to a reachable frontend."
        ) from exc


async def ensure_search_attributes(client: Client, keys: Sequence[SearchAttributeKey[Any]]) -> None:
    """Register Proctor's search attributes (idempotent; needed on a fresh server). One at a
    time: a server that already has some refuses a request naming them all."""
    for key in keys:
        request = AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type)},
        )
        try:
            await client.operator_service.add_search_attributes(request)
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise


def dev_server_type(key: SearchAttributeKey[Any]) -> str:
    """The type name the dev server's `--search-attribute NAME=TYPE` flag takes."""
    names = {
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
        IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    }
    return names[IndexedValueType.ValueType(key.indexed_value_type)]


def visibility_literal(value: str) -> str:
    """A string literal for a visibility query (ids and names are restricted, but quote
    defensively anyway)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
