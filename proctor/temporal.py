"""Connecting to Temporal the one way every Proctor process must: with the pydantic converter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode


class TemporalUnavailable(RuntimeError):
    """Temporal could not be reached; the message says where and how to fix it."""


async def connect_temporal(address: str, namespace: str = "default",
                           runtime: Runtime | None = None) -> Client:
    """`runtime`: one exporting the SDK's metrics (default: the SDK's default runtime)."""
    try:
        return await Client.connect(address, namespace=namespace,
                                    data_converter=pydantic_data_converter, runtime=runtime)
    except RuntimeError as exc:
        raise TemporalUnavailable(
            f"cannot connect to Temporal at {address} (namespace {namespace}): {exc}. Start it "
            "with `proctor up`, or set TEMPORAL_ADDRESS to a reachable frontend."
        ) from exc


async def ensure_search_attributes(
    client: Client, keys: Sequence[SearchAttributeKey[Any]]
) -> None:
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
    names = {IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
             IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime"}
    return names[IndexedValueType.ValueType(key.indexed_value_type)]
