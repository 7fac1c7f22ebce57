"""Standing grants: an approval that also covers similar requests for a while.

A grant is made only from signed votes: each approving vote carries the scope its approver
chose (`GrantScope`), covered by the vote's signature. The stored grant keeps those votes and
the signed request they approved, so whoever uses it re-derives and re-verifies everything it
allows from signed data, never from the row's own columns.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from proctor.models.approval import GrantScope, Vote
from proctor.models.base import Frozen
from proctor.models.request import ActionRequest


class StandingGrant(Frozen):
    """A grant as stored. `agent_id`, `action`, `rule_id`, `expires_at`, `when` and `max_uses`
    index what `request` and `votes` say (verified again on every use); `uses` and the
    revocation are the store's own."""

    grant_id: str = Field(pattern=r"^g-[A-Za-z0-9-]{1,64}$")
    agent_id: str
    action: str
    rule_id: str
    policy_file: str | None = None
    made_at: datetime
    expires_at: datetime
    when: str | None = None
    max_uses: int | None = None
    uses: int = 0
    made_by: tuple[str, ...]
    workflow_id: str
    request: ActionRequest
    """The signed request the grant was made on: the votes are bound to its digest."""
    votes: tuple[Vote, ...]
    """The signed approving votes that carried the scope."""
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None


class GrantDraft(Frozen):
    """What the workflow asks to store once a round approved with grant scopes: the activity
    writes the grant and its `grant_made` audit row in one transaction, keyed by the run."""

    grant_id: str
    workflow_id: str
    run_id: str
    policy_file: str | None = None
    request: ActionRequest
    votes: tuple[Vote, ...]
    scope: GrantScope
    """The scope the votes agree on (the narrowest of each)."""
    expires_at: datetime


class GrantReceipt(Frozen):
    grant_id: str
    audit_seq: int
