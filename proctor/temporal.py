"""Connecting to Temporal the one way every Proctor process must: with the pydantic converter."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode


class TemporalUnavailable(RuntimeError):
    """Temporal could not be reached; the message says where and how to fix it."""


async def connect_temporal(address: str, namespace: str = "default") -> Client:
    try:
        return await Client.connect(address, namespace=namespace,
                                    data_converter=pydantic_data_converter)
    except RuntimeError as exc:
        raise TemporalUnavailable(
            f"cannot connect to Temporal at {address} (namespace {namespace}): {exc}. Start it "
            "with `proctor up`, or set TEMPORAL_ADDRESS to a reachable frontend."
        ) from exc


async def ensure_search_attributes(
    client: Client, keys: Sequence[SearchAttributeKey[str]]
) -> None:
    """Register Proctor's keyword search attributes (idempotent; needed on a fresh server)."""
    request = AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in keys},
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
