"""What every boundary model shares: immutability, strictness, and the name patterns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

JsonValue = Any
"""A JSON-compatible value (dict / list / str / int / float / bool / None)."""

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
ACTION_PATTERN = r"^[A-Za-z0-9_.:/-][A-Za-z0-9_.:/*-]{0,199}$"


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields: boundaries should fail loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")
