"""What goes into the audit chain: one step, its receipt, and the final row with trust."""

from __future__ import annotations

from pydantic import Field

from proctor.models.base import Frozen, Jsonable
from proctor.models.identity import TrustChange


class AuditEvent(Frozen):
    """One step to append to the audit chain; the key makes retries write nothing twice."""

    idempotency_key: str = Field(min_length=1, max_length=512)
    event_type: str
    workflow_id: str | None = None
    agent_id: str | None = None
    action: str | None = None
    actor: str | None = None
    payload: dict[str, Jsonable] = Field(default_factory=dict)
    """Loose: built by Proctor's steps from tuples and literals; the chain's canonical JSON
    (RFC 8785) is where anything that is not JSON is refused."""


class AuditReceipt(Frozen):
    seq: int
    hash: str


class OutcomeRecord(Frozen):
    """The final audit row and the trust change that go into one transaction."""

    event: AuditEvent
    trust: TrustChange | None = None
