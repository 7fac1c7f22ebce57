"""One model tool call as one Proctor request: its params and its request id.

Every entry point (the governed tool, its `needs_approval`, the guardrails, an interruption
looked up later) derives the same request id from the same call, so they all meet in one
workflow, and a run resumed or re-run after a crash joins it instead of asking twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from proctor.canonical import digest
from proctor.errors import InputError
from proctor.integrations import derive_request_id


def call_params(arguments: str | None) -> dict[str, Any]:
    """The tool call's arguments as the model sent them: the request's params."""
    if arguments is None or not arguments.strip():
        return {}
    try:
        params = json.loads(arguments)
    except ValueError as exc:
        raise InputError(f"tool arguments are not JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise InputError(f"tool arguments must be a JSON object, got {type(params).__name__}")
    return params


def call_request_id(agent_id: str, call_id: str, params: Mapping[str, Any]) -> str:
    """The request id of `call_id` with these arguments: the arguments are part of it, so an
    approval given for one set of arguments can never be joined by a call carrying others."""
    return derive_request_id(agent_id, call_id, digest(dict(params)))
