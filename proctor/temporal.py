"""Connecting to Temporal the one way every Proctor process must: with the pydantic converter
and, where a payload key ring is configured, the encryption codec.

What it reads from the environment (`ConnectionSettings`: address, namespace, task queue, state
dir and its stack.json, payload key dir) is the agent side's whole configuration, so this module
needs only the base dependencies; the server's `ProctorSettings` inherits it.

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
import json
import logging
import os
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, ValidationError
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
from proctor.errors import ConfigurationError, UnavailableError
from proctor.payload_keys import KeyRing, PayloadKeysMissing

log = logging.getLogger(__name__)

ENV_PREFIX = "PROCTOR_"
STACK_FILE = "stack.json"


class NotConfigured(ConfigurationError):
    """A setting is missing or malformed; the message names its environment variable."""


class ConnectionSettings(BaseModel):
    """What connecting to Temporal reads from the environment: all the agent side needs.

    Plain pydantic, read by `connection_settings()`: the agent side installs without
    pydantic-settings. The server's `ProctorSettings` inherits these fields, so both sides read
    the same variables with the same defaults."""

    state_dir: Path = Path(".proctor")
    """Embedded stack data (Temporal SQLite file, Postgres data) and its stack.json."""
    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "PROCTOR_TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "PROCTOR_TEMPORAL_NAMESPACE"),
    )
    task_queue: str = "proctor"
    temporal_port: int = 7233
    payload_key_dir: Path | None = None
    """AES-GCM keys encrypting every workflow and activity payload in Temporal history (the
    newest encrypts, all decrypt: rotation); default `<state dir>/payload-keys`."""


def environment_variables(field: str) -> tuple[str, ...]:
    """The variables a connection setting is read from, in order of precedence."""
    alias = ConnectionSettings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (f"{ENV_PREFIX}{field}".upper(),)


def connection_settings(environ: Mapping[str, str] | None = None) -> ConnectionSettings:
    """The connection settings from the environment, read as `ProctorSettings` reads them
    (case-insensitive names); a bad value is one line naming its variable, never the value."""
    given = {
        name.upper(): value for name, value in (os.environ if environ is None else environ).items()
    }
    values: dict[str, str] = {}
    for field, info in ConnectionSettings.model_fields.items():
        for variable in environment_variables(field):
            if variable in given:
                values[variable if info.validation_alias else field] = given[variable]
                break
    try:
        return ConnectionSettings.model_validate(values)
    except ValidationError as exc:
        raise NotConfigured(
            "; ".join(
                f"{_variable_of(str(error['loc'][0]))}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
        ) from None


def _variable_of(location: str) -> str:
    fields = ConnectionSettings.model_fields
    return environment_variables(location)[0] if location in fields else location


class StackInfo(BaseModel):
    """What a running `proctor up` wrote for the other commands to find."""

    temporal_address: str
    database_url: str
    ui_url: str | None = None
    pid: int


def stack_file(settings: ConnectionSettings) -> Path:
    return settings.state_dir / STACK_FILE


def read_stack(settings: ConnectionSettings) -> StackInfo | None:
    path = stack_file(settings)
    try:
        return StackInfo.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def payload_key_dir(settings: ConnectionSettings) -> Path:
    return settings.payload_key_dir or settings.state_dir / "payload-keys"


def temporal_address(settings: ConnectionSettings) -> str:
    """The configured frontend, else the running `proctor up`'s, else localhost."""
    if settings.temporal_address:
        return settings.temporal_address
    stack = read_stack(settings)
    if stack is not None:
        return stack.temporal_address
    return f"localhost:{settings.temporal_port}"


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


def payload_keys_required(settings: ConnectionSettings) -> str | None:
    """Why this process must have the key ring (None: nothing says encryption is on)."""
    if settings.payload_key_dir is not None:
        return "PROCTOR_PAYLOAD_KEY_DIR is set"
    if read_stack(settings) is not None:
        return f"the embedded stack ({stack_file(settings)}) encrypts history"
    return None


def data_converter(
    settings: ConnectionSettings | None = None, *, require_payload_keys: bool = False
) -> DataConverter:
    """The converter for this process: encrypting with the configured ring; without one,
    clear (refused when the ring is required, see the module's rule)."""
    settings = settings or connection_settings()
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
    settings: ConnectionSettings | None = None,
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
