"""Delegation: a request made on someone's behalf carries the signed chain that lets it.

Each link is signed by its delegator (a human with their approver key, or an agent with its
agent key) and names the delegate agent, the action patterns it may ask for and an expiry.
The request's own signature covers the whole chain.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, JsonValue, field_validator

from proctor.models.base import ACTION_GLOB_PATTERN, AGENT_ID_PATTERN, Frozen

PrincipalKind = Literal["human", "agent"]


class DelegationLink(Frozen):
    """`delegator` lets agent `delegate` ask for `actions` (patterns, `*` wildcard) until
    `expires_at`. Every field but `signature` is covered by the signature."""

    delegator: str = Field(min_length=1, max_length=256)
    delegator_kind: PrincipalKind
    delegate: str = Field(pattern=AGENT_ID_PATTERN)
    actions: tuple[str, ...] = Field(min_length=1, max_length=64)
    issued_at: datetime
    expires_at: datetime
    key_id: str = Field(default="", max_length=128)
    """Fingerprint of the delegator's signing key (SHA-256 of its SubjectPublicKeyInfo)."""
    signature: str = Field(default="", max_length=4096)

    @field_validator("actions")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not re.match(ACTION_GLOB_PATTERN, pattern):
                raise ValueError(f"{pattern!r} is not an action pattern")
        return value

    @field_validator("issued_at", "expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("times must carry a timezone")
        return value.astimezone(UTC)

    def signing_payload(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json", exclude={"signature"})

    @property
    def principal(self) -> str:
        """The delegator as the chain names it: `alice`, or `agent:<id>`."""
        return self.delegator if self.delegator_kind == "human" else f"agent:{self.delegator}"


class DelegationView(Frozen):
    """What policy conditions see as `request.delegation` (a verified chain only)."""

    chain: tuple[str, ...] = ()
    """Every principal from the root to the requesting agent (`alice`, `agent:a`, `agent:b`)."""
    depth: int = 0
    """Number of links (0: the agent acts for itself)."""
    root: str = ""
    """Who the chain starts from (`""` without one)."""

    def context(self) -> dict[str, object]:
        return {"chain": list(self.chain), "depth": self.depth, "root": self.root}
