"""make_grant: store the standing grant a round's approvals agreed on, with its `grant_made`
audit row, once per workflow run however often Temporal retries it."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from proctor.contract import MAKE_GRANT, step_key
from proctor.models import AuditEvent, GrantDraft, GrantReceipt
from proctor.policy.conditions import ConditionSyntaxError, compile_condition
from proctor.stores.grants import GrantStore

INVALID_GRANT = "InvalidGrant"
"""The ApplicationError type of a draft no retry can store (the workflow audits it)."""


class GrantActivities:
    def __init__(self, store: GrantStore) -> None:
        self.store = store

    @activity.defn(name=MAKE_GRANT)
    async def make_grant(self, draft: GrantDraft) -> GrantReceipt:
        """Refuse a `when` that is not valid CEL (it could never be checked on use), else
        store the grant and its audit row in one transaction."""
        if draft.scope.when is not None:
            try:
                compile_condition("when", draft.scope.when)
            except ConditionSyntaxError as exc:
                raise ApplicationError(
                    f"the `when` of {draft.grant_id}, {draft.scope.when!r}, is not a valid"
                    f" condition: {exc}",
                    type=INVALID_GRANT,
                    non_retryable=True,
                ) from exc
        return await self.store.make(draft, grant_made(draft))


def grant_made(draft: GrantDraft) -> AuditEvent:
    """The `grant_made` row: what the grant allows, and the signed votes that made it."""
    made_by = [vote.approver for vote in draft.votes]
    return AuditEvent(
        idempotency_key=step_key(draft.workflow_id, draft.run_id, "grant"),
        event_type="grant_made",
        workflow_id=draft.workflow_id,
        agent_id=draft.request.agent_id,
        action=draft.request.action,
        actor=",".join(made_by),
        payload={
            "grant_id": draft.grant_id,
            "request_id": draft.request.request_id,
            "rule_id": draft.scope.rule_id,
            "policy_file": draft.policy_file,
            "expires_at": draft.expires_at.isoformat(),
            "when": draft.scope.when,
            "max_uses": draft.scope.max_uses,
            "made_by": made_by,
            "votes": [
                {
                    "approver": vote.approver,
                    "key_id": vote.key_id,
                    "signed_at": None if vote.signed_at is None else vote.signed_at.isoformat(),
                }
                for vote in draft.votes
            ],
        },
    )
