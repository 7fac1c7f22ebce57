"""What every boundary model shares: immutability, strictness, and the name patterns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Jsonable = Any
"""Anything pydantic dumps to JSON (tuples, datetimes and models as well as plain JSON), for
values built in Python that become JSON only on the wire or when hashed: an agent's return
value, an audit payload, a policy test's YAML params. Where a value arrives as JSON (what an
agent signs), fields use pydantic's validated `JsonValue` instead."""

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

_ACTION_CHARACTERS = "A-Za-z0-9_.:/-"
ACTION_NAME_PATTERN = rf"^[{_ACTION_CHARACTERS}]{{1,200}}$"
"""An action as an agent requests it (`crm.delete_customer`)."""
ACTION_GLOB_PATTERN = rf"^[*{_ACTION_CHARACTERS}]{{1,200}}$"
"""An action pattern in a policy rule: an action name that may hold the wildcard `*`."""


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields: boundaries should fail loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")
