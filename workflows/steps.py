"""Steps both workflows take the same way: a Postgres-backed activity (a regular one for what
the run decides by, a local one for what it writes), an audit row keyed to this run, the stage
shown in visibility, a vote's signature checked against trusted keys and its audit row, and a
wait for a message or a moment (one durable timer)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from proctor_server.workflows.step_options import (
    STEP_TIMEOUT,
    STORE_DEADLINE,
    STORE_RETRY,
    VOTE_KEYS_TIMEOUT,
)

with workflow.unsafe.imports_passed_through():
    from proctor.attestation import vote_refusal
    from proctor.contract import (
        DEADLINE_ATTRIBUTE,
        RECORD_AUDIT,
        STATUS_ATTRIBUTE,
        VOTE_KEYS,
        step_key,
    )
    from proctor.models import (
        AuditEvent,
        AuditReceipt,
        RecordedVote,
        Stage,
        Vote,
        VoteKeyQuery,
        VoteKeys,
    )

Result = TypeVar("Result", bound=BaseModel)


async def store_step(
    name: str,
    arg: BaseModel,
    result_type: type[Result],
    *,
    attempt_timeout: timedelta = STEP_TIMEOUT,
) -> Result:
    """A regular activity backed by Postgres (or the key directory): its answer is recorded in
    history; retried with backoff through an outage, and nothing proceeds without it."""
    result: Result = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=attempt_timeout,
        schedule_to_close_timeout=STORE_DEADLINE,
        retry_policy=STORE_RETRY,
    )
    return result


async def local_store_step(name: str, arg: BaseModel, result_type: type[Result]) -> Result:
    """A Postgres write: local to the workflow task (no server round trip), retried with
    backoff through an outage; nothing proceeds without it. Its payload comes only from what
    history already holds, so a retry after a crash writes the same thing."""
    result: Result = await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=STEP_TIMEOUT,
        schedule_to_close_timeout=STORE_DEADLINE,
        retry_policy=STORE_RETRY,
    )
    return result


async def audit_step(event: AuditEvent) -> AuditReceipt:
    """Append one step to the audit chain (a local write); if it cannot be written the
    workflow fails and nothing more happens."""
    return await local_store_step(RECORD_AUDIT, event, AuditReceipt)


def audit_event(
    step: str,
    event_type: str,
    payload: dict[str, object],
    *,
    agent_id: str,
    action: str,
    actor: str,
) -> AuditEvent:
    """One step of this run for the audit chain; the key is derived from the run and the step,
    so a retried step writes nothing twice."""
    info = workflow.info()
    return AuditEvent(
        idempotency_key=step_key(info.workflow_id, info.run_id, step),
        event_type=event_type,
        workflow_id=info.workflow_id,
        agent_id=agent_id,
        action=action,
        actor=actor,
        payload=payload,
    )


def publish_stage(stage: Stage, deadline: datetime | None = None) -> None:
    """Where the workflow stands (and its approval deadline), for visibility queries."""
    updates: list[SearchAttributeUpdate[Any]] = [STATUS_ATTRIBUTE.value_set(stage.value)]
    if deadline is not None:
        updates.append(DEADLINE_ATTRIBUTE.value_set(deadline))
    workflow.upsert_search_attributes(updates)


async def signature_refusal(
    vote: Vote,
    *,
    workflow_id: str,
    request_digest: str,
    agent_keys: tuple[str, ...],
    escalated_at: datetime,
) -> str | None:
    """Why the vote's signature does not count (not signed by a trusted key of the approver or
    of the approval service, for this request, since it escalated), or None if it does. An
    unsigned vote is refused without reading any key."""
    keys = VoteKeys()
    if vote.signature:
        keys = await store_step(
            VOTE_KEYS,
            VoteKeyQuery(approver=vote.approver, channel=vote.channel),
            VoteKeys,
            attempt_timeout=VOTE_KEYS_TIMEOUT,
        )
    return vote_refusal(
        vote,
        workflow_id=workflow_id,
        request_digest=request_digest,
        approver_keys=keys.approver,
        channel_keys=keys.channel,
        agent_keys=agent_keys,
        escalated_at=escalated_at,
    )


def vote_payload(recorded: RecordedVote) -> dict[str, object]:
    """What the audit row of a vote says about it, when it was signed included."""
    vote = recorded.vote
    return {
        "approve": vote.approve,
        "accepted": recorded.accepted,
        "reason": recorded.reason,
        "note": vote.note,
        "channel": vote.channel,
        "key_id": vote.key_id or None,
        "signed_at": vote.signed_at.isoformat() if vote.signed_at else None,
    }


async def wait_until(moment: datetime, woken: Callable[[], bool]) -> bool:
    """Wait for `woken()` or until `moment`, whichever comes first; True if woken."""
    remaining = (moment - workflow.now()).total_seconds()
    if remaining <= 0:
        return False
    try:
        await workflow.wait_condition(woken, timeout=remaining)
    except TimeoutError:
        return False
    return True
