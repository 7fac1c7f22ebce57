"""The governance side's client: what approvers and operators do to governed runs.

List what waits for a human, cast a signed vote, ask for a suspended agent's return. It is
built from an agent-side `Client` (the same Temporal connection and task queue); the agent
side never imports it, so an agent process carries none of the approvers' machinery.

```python
operator = OperatorClient(await Client.connect())
for pending in await operator.pending_approvals():
    await operator.decide(pending.card.workflow_id, my_vote_key, approve=True)
```
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from proctor.approvals.keys import VoteSigner
from proctor.client import Client
from proctor.contract import (
    ACTION_ATTRIBUTE,
    AGENT_ATTRIBUTE,
    DECIDE_SIGNAL,
    GOVERNED_ACTION_WORKFLOW,
    PROGRESS_QUERY,
    REINSTATEMENT_WORKFLOW,
    STATUS_ATTRIBUTE,
    reinstatement_workflow_id,
)
from proctor.errors import NotFoundError
from proctor.models import (
    GrantScope,
    PendingApproval,
    Progress,
    ReinstatementOutcome,
    ReinstatementRequest,
    Vote,
)
from proctor.temporal import visibility_literal

PROGRESS_QUERIES_AT_ONCE = 16
"""How many waiting workflows `pending_approvals_report` asks at the same time."""


class OperatorClient:
    """Approvals and reinstatements, over the Temporal client of an agent-side `Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.temporal = client.temporal

    async def progress(
        self, workflow_id: str, *, answer_within: timedelta | None = None
    ) -> Progress:
        """Where a governed action or a reinstatement stands (its votes, what it waits for),
        as its worker answers; `answer_within` bounds the wait (else the connection's)."""
        progress: Progress = await self.temporal.get_workflow_handle(workflow_id).query(
            PROGRESS_QUERY, result_type=Progress, rpc_timeout=answer_within
        )
        return progress

    # --- votes ----------------------------------------------------------------------------

    async def decide(
        self,
        workflow_id: str,
        signer: VoteSigner,
        *,
        approve: bool,
        note: str | None = None,
        approver: str | None = None,
        request_digest: str | None = None,
        grant: GrantScope | None = None,
    ) -> Vote:
        """Sign a vote and signal it; the workflow checks the signature and whether this
        approver may decide. `signer` is the approver's own key, or an approval service's
        (then `approver` names the human it authenticated). Without `request_digest` the vote
        is bound to the request the workflow is waiting on now. `grant`: approve this request
        and similar ones for a while (signed with the vote; made only if the rule allows)."""
        if request_digest is None:
            pending = (await self.progress(workflow_id)).pending
            if pending is None:
                raise NotFoundError(f"{workflow_id} is not waiting for approval")
            request_digest = pending.card.request_digest
        vote = signer.sign(
            workflow_id=workflow_id,
            request_digest=request_digest,
            approve=approve,
            note=note,
            approver=approver,
            grant=grant,
        )
        await self.send_vote(workflow_id, vote)
        return vote

    async def send_vote(self, workflow_id: str, vote: Vote) -> None:
        """Signal an already-signed vote."""
        await self.temporal.get_workflow_handle(workflow_id).signal(DECIDE_SIGNAL, vote)

    # --- what waits -----------------------------------------------------------------------

    async def pending_approvals(
        self, *, agent: str | None = None, action: str | None = None
    ) -> list[PendingApproval]:
        """Waiting approvals, found through Temporal visibility (no second source of truth),
        optionally for one agent and/or action."""
        pending, _ = await self.pending_approvals_report(agent=agent, action=action)
        return pending

    async def pending_approvals_report(
        self,
        *,
        agent: str | None = None,
        action: str | None = None,
        answer_within: timedelta | None = None,
    ) -> tuple[list[PendingApproval], list[str]]:
        """The waiting approvals, soonest deadline first, and the ids of those listed as
        waiting whose worker did not answer (one silent task queue hides nothing else), each
        worker given `answer_within` (else the connection's RPC deadline)."""
        ids = [
            execution.id
            async for execution in self.temporal.list_workflows(_awaiting_approval(agent, action))
        ]
        gate = asyncio.Semaphore(PROGRESS_QUERIES_AT_ONCE)

        async def ask(workflow_id: str) -> Progress | None:
            async with gate:
                try:
                    return await self.progress(workflow_id, answer_within=answer_within)
                except RPCError:
                    return None

        states = await asyncio.gather(*(ask(i) for i in ids))
        silent = [i for i, state in zip(ids, states, strict=True) if state is None]
        pending = [s.pending for s in states if s is not None and s.pending is not None]
        return sorted(pending, key=lambda p: p.card.deadline), silent

    # --- reinstatement --------------------------------------------------------------------

    async def request_reinstatement(
        self,
        agent_id: str,
        *,
        requested_by: str,
        reason: str,
        restore_score: float | None = None,
        decide_within: timedelta = timedelta(days=7),
    ) -> str:
        """Ask for a suspended agent to return; its owner or a policy approver decides (the
        requester can't). Returns the workflow id, to approve or deny like any action."""
        workflow_id = reinstatement_workflow_id(agent_id, uuid.uuid4().hex[:12])
        await self.temporal.start_workflow(
            REINSTATEMENT_WORKFLOW,
            ReinstatementRequest(
                agent_id=agent_id,
                requested_by=requested_by,
                reason=reason,
                restore_score=restore_score,
                timeout_seconds=decide_within.total_seconds(),
            ),
            id=workflow_id,
            task_queue=self.client.task_queue,
            result_type=ReinstatementOutcome,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(AGENT_ATTRIBUTE, agent_id),
                    SearchAttributePair(ACTION_ATTRIBUTE, "reinstate"),
                    SearchAttributePair(STATUS_ATTRIBUTE, "verifying"),
                ]
            ),
        )
        return workflow_id

    async def reinstatement_outcome(self, workflow_id: str) -> ReinstatementOutcome:
        outcome: ReinstatementOutcome = await self.temporal.get_workflow_handle(
            workflow_id, result_type=ReinstatementOutcome
        ).result()
        return outcome


def _awaiting_approval(agent: str | None, action: str | None) -> str:
    """The visibility query for running workflows waiting for a human, optionally narrowed."""
    query = (
        f"WorkflowType IN ('{GOVERNED_ACTION_WORKFLOW}', '{REINSTATEMENT_WORKFLOW}') "
        f"AND ExecutionStatus = 'Running' "
        f"AND {STATUS_ATTRIBUTE.name} = 'awaiting_approval'"
    )
    for key, value in ((AGENT_ATTRIBUTE, agent), (ACTION_ATTRIBUTE, action)):
        if value is not None:
            query += f" AND {key.name} = {visibility_literal(value)}"
    return query
