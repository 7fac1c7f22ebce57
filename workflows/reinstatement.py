"""ReinstatementWorkflow: a suspended agent returns only when a human it answers to agrees.

The request (who asks, why, at what score) goes to the agent's owner and the approvers its
policy names; the first authorised answer decides, the requester can't answer their own
request, and nothing happens after the deadline. Every step is audited.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.step_options import STEP_TIMEOUT, STORE_DEADLINE, STORE_RETRY, VOTE_KEYS_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from proctor.attestation import vote_refusal
    from proctor.contract import (
        DECIDE_SIGNAL,
        PLAN_REINSTATEMENT,
        PROGRESS_QUERY,
        RECORD_AUDIT,
        REINSTATE_AGENT,
        REINSTATEMENT_WORKFLOW,
        STATUS_ATTRIBUTE,
        VOTE_KEYS,
        step_key,
    )
    from proctor.models import (
        AuditEvent,
        AuditReceipt,
        PendingApproval,
        Progress,
        RecordedVote,
        Reinstatement,
        ReinstatementOutcome,
        ReinstatementPlan,
        ReinstatementRequest,
        Stage,
        Vote,
        VoteKeyQuery,
        VoteKeys,
    )


@workflow.defn(name=REINSTATEMENT_WORKFLOW)
class ReinstatementWorkflow:
    def __init__(self) -> None:
        self._inbox: list[Vote] = []
        self._votes: list[RecordedVote] = []
        self._pending: PendingApproval | None = None
        self._stage = Stage.VERIFYING

    @workflow.run
    async def run(self, request: ReinstatementRequest) -> ReinstatementOutcome:
        plan = await workflow.execute_activity(
            PLAN_REINSTATEMENT,
            request,
            result_type=ReinstatementPlan,
            start_to_close_timeout=STEP_TIMEOUT,
            schedule_to_close_timeout=STORE_DEADLINE,
            retry_policy=STORE_RETRY,
        )
        if plan.problem is not None or plan.agent is None:
            return ReinstatementOutcome(status="not_applicable", reason=plan.problem or "")
        await self._audit(
            request,
            "requested",
            "reinstatement_requested",
            {
                "reason": request.reason,
                "restore_score": plan.restore_score,
                "approvers": list(plan.approvers),
            },
            actor=request.requested_by,
        )
        deadline = workflow.now() + timedelta(seconds=request.timeout_seconds)
        self._pending = PendingApproval(
            workflow_id=workflow.info().workflow_id,
            request_id=workflow.info().workflow_id,
            agent_id=request.agent_id,
            action="reinstate",
            params={"reason": request.reason, "score": plan.restore_score},
            rule_id="reinstatement",
            reason=f"{request.requested_by}: {request.reason}",
            approvers=plan.approvers,
            quorum=1,
            approvals=(),
            deadline=deadline,
            request_digest="",
        )
        self._set_stage(Stage.AWAITING_APPROVAL)
        while True:
            while self._inbox:
                vote = self._inbox.pop(0)
                recorded = await self._judge(vote, request, plan)
                self._votes.append(recorded)
                await self._audit(
                    request,
                    f"vote:{len(self._votes)}",
                    "vote",
                    {
                        "approve": vote.approve,
                        "accepted": recorded.accepted,
                        "reason": recorded.reason,
                        "note": vote.note,
                        "channel": vote.channel,
                        "key_id": vote.key_id or None,
                    },
                    actor=vote.approver,
                )
                if not recorded.accepted:
                    continue
                self._pending = None
                if not vote.approve:
                    return self._close(
                        ReinstatementOutcome(
                            status="denied", reason=vote.note or "denied", votes=tuple(self._votes)
                        )
                    )
                await workflow.execute_activity(
                    REINSTATE_AGENT,
                    Reinstatement(
                        agent_id=request.agent_id,
                        workflow_id=workflow.info().workflow_id,
                        approver=vote.approver,
                        score=plan.restore_score,
                        note=vote.note,
                    ),
                    result_type=AuditReceipt,
                    start_to_close_timeout=STEP_TIMEOUT,
                    schedule_to_close_timeout=STORE_DEADLINE,
                    retry_policy=STORE_RETRY,
                )
                return self._close(
                    ReinstatementOutcome(
                        status="reinstated",
                        reason=f"approved by {vote.approver}",
                        votes=tuple(self._votes),
                        score=plan.restore_score,
                    )
                )
            remaining = (deadline - workflow.now()).total_seconds()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await workflow.wait_condition(lambda: bool(self._inbox), timeout=remaining)
            except TimeoutError:
                self._pending = None
                await self._audit(request, "expired", "reinstatement_expired", {})
                return self._close(
                    ReinstatementOutcome(
                        status="expired",
                        reason="nobody decided before the deadline",
                        votes=tuple(self._votes),
                    )
                )

    @workflow.signal(name=DECIDE_SIGNAL)
    def decide(self, vote: Vote) -> None:
        self._inbox.append(vote)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return Progress(stage=self._stage, votes=tuple(self._votes), pending=self._pending)

    async def _judge(
        self, vote: Vote, request: ReinstatementRequest, plan: ReinstatementPlan
    ) -> RecordedVote:
        """Signed by a trusted key of the approver or an approval service (as for actions),
        by the agent's owner or a policy approver, never by the requester."""
        now = workflow.now()
        keys = VoteKeys()
        if vote.signature:
            keys = await workflow.execute_activity(
                VOTE_KEYS,
                VoteKeyQuery(approver=vote.approver, channel=vote.channel),
                result_type=VoteKeys,
                start_to_close_timeout=VOTE_KEYS_TIMEOUT,
                schedule_to_close_timeout=STORE_DEADLINE,
                retry_policy=STORE_RETRY,
            )
        info = workflow.info()
        unsigned = vote_refusal(
            vote,
            workflow_id=info.workflow_id,
            request_digest="",
            approver_keys=keys.approver,
            channel_keys=keys.channel,
            agent_keys=(),
            escalated_at=info.workflow_start_time,
        )
        who = vote.approver.strip().casefold()
        if unsigned is not None:
            reason = unsigned
        elif who == request.requested_by.strip().casefold():
            reason = "the requester cannot decide their own request"
        elif who not in {a.casefold() for a in plan.approvers}:
            reason = "not the agent's owner nor an approver named in its policy"
        else:
            return RecordedVote(
                vote=vote, accepted=True, reason="approved" if vote.approve else "denied", at=now
            )
        return RecordedVote(vote=vote, accepted=False, reason=reason, at=now)

    def _close(self, outcome: ReinstatementOutcome) -> ReinstatementOutcome:
        self._set_stage(Stage.CLOSED)
        return outcome

    def _set_stage(self, stage: Stage) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([STATUS_ATTRIBUTE.value_set(stage.value)])

    async def _audit(
        self,
        request: ReinstatementRequest,
        step: str,
        event_type: str,
        payload: dict[str, object],
        actor: str | None = None,
    ) -> None:
        info = workflow.info()
        workflow_id = info.workflow_id
        await workflow.execute_activity(
            RECORD_AUDIT,
            AuditEvent(
                idempotency_key=step_key(workflow_id, info.run_id, step),
                event_type=event_type,
                workflow_id=workflow_id,
                agent_id=request.agent_id,
                action="reinstate",
                actor=actor or "proctor",
                payload=payload,
            ),
            result_type=AuditReceipt,
            start_to_close_timeout=STEP_TIMEOUT,
            schedule_to_close_timeout=STORE_DEADLINE,
            retry_policy=STORE_RETRY,
        )
