"""ReinstatementWorkflow: a suspended agent returns only when a human it answers to agrees.

The request (who asks, why, at what score) goes to the agent's owner and the approvers its
policy names; the first authorised answer decides, the requester can't answer their own
request, and nothing happens after the deadline. Every step is audited. Votes are checked and
counted as for an action (one approval round with a quorum of one), only who may answer
differs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from proctor_server.workflows.steps import (
    audit_event,
    audit_step,
    publish_stage,
    signature_refusal,
    store_step,
    vote_payload,
    wait_until,
)

with workflow.unsafe.imports_passed_through():
    from proctor.contract import (
        DECIDE_SIGNAL,
        PLAN_REINSTATEMENT,
        PROGRESS_QUERY,
        REINSTATE_AGENT,
        REINSTATEMENT_WORKFLOW,
    )
    from proctor.models import (
        ApprovalCard,
        AuditReceipt,
        EscalationSettings,
        PendingApproval,
        Progress,
        Reinstatement,
        ReinstatementOutcome,
        ReinstatementPlan,
        ReinstatementRequest,
        Stage,
        Vote,
        approver_key,
    )
    from proctor_server.workflows.approval_round import ApprovalRound, Settle


class ReinstatementRound(ApprovalRound):
    """One answer decides; the agent's owner or an approver its policy names may give it,
    never the human who asked."""

    def __init__(
        self, request: ReinstatementRequest, pending: PendingApproval, started: datetime
    ) -> None:
        settings = EscalationSettings(
            approvers=pending.card.approvers, quorum=1, timeout_seconds=request.timeout_seconds
        )
        super().__init__(settings, pending, started)
        self._requested_by = approver_key(request.requested_by)

    def refusal(self, approver: str) -> str | None:
        who = approver_key(approver)
        if who == self._requested_by:
            return "the requester cannot decide their own request"
        if who not in {approver_key(a) for a in self.approvers}:
            return "not the agent's owner nor an approver named in its policy"
        return None


@workflow.defn(name=REINSTATEMENT_WORKFLOW)
class ReinstatementWorkflow:
    def __init__(self) -> None:
        self._inbox: list[Vote] = []
        self._round: ReinstatementRound | None = None
        self._stage = Stage.VERIFYING

    @workflow.run
    async def run(self, request: ReinstatementRequest) -> ReinstatementOutcome:
        plan = await store_step(PLAN_REINSTATEMENT, request, ReinstatementPlan)
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
        round_ = self._open_round(request, plan)
        while True:
            while self._inbox:
                decided = await self._count_vote(request, round_, self._inbox.pop(0))
                if decided is not None:
                    return await self._decided(request, plan, round_, decided)
            if await wait_until(round_.next_wake().at, lambda: bool(self._inbox)):
                continue
            if round_.fire_due(workflow.now()):  # nothing else is scheduled: the deadline
                await self._audit(request, "expired", "reinstatement_expired", {})
                return self._close(
                    ReinstatementOutcome(
                        status="expired",
                        reason="nobody decided before the deadline",
                        votes=tuple(round_.votes),
                    )
                )

    @workflow.signal(name=DECIDE_SIGNAL)
    def decide(self, vote: Vote) -> None:
        self._inbox.append(vote)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        round_ = self._round
        return Progress(
            stage=self._stage,
            votes=tuple(round_.votes) if round_ is not None else (),
            pending=round_.pending if round_ is not None else None,
        )

    def _open_round(
        self, request: ReinstatementRequest, plan: ReinstatementPlan
    ) -> ReinstatementRound:
        started = workflow.now()
        workflow_id = workflow.info().workflow_id
        card = ApprovalCard(
            workflow_id=workflow_id,
            request_id=workflow_id,
            agent_id=request.agent_id,
            action="reinstate",
            params={"reason": request.reason, "score": plan.restore_score},
            rule_id="reinstatement",
            reason=f"{request.requested_by}: {request.reason}",
            approvers=plan.approvers,
            quorum=1,
            deadline=started + timedelta(seconds=request.timeout_seconds),
            request_digest="",
        )
        pending = PendingApproval(card=card)
        self._round = ReinstatementRound(request, pending, started)
        self._set_stage(Stage.AWAITING_APPROVAL)
        return self._round

    async def _count_vote(
        self, request: ReinstatementRequest, round_: ReinstatementRound, vote: Vote
    ) -> Settle | None:
        """Signed by a trusted key of the approver or an approval service (as for actions),
        by someone the round lets answer; audited, counted or not. Judged when its keys have
        been read, as for actions."""
        info = workflow.info()
        unsigned = await signature_refusal(
            vote,
            workflow_id=info.workflow_id,
            request_digest="",
            agent_keys=(),
            escalated_at=info.workflow_start_time,
        )
        verdict = round_.judge(vote, unsigned, workflow.now())
        await self._audit(
            request,
            f"vote:{len(round_.votes)}",
            "vote",
            vote_payload(verdict.recorded),
            actor=vote.approver,
        )
        return verdict.settle

    async def _decided(
        self,
        request: ReinstatementRequest,
        plan: ReinstatementPlan,
        round_: ReinstatementRound,
        settle: Settle,
    ) -> ReinstatementOutcome:
        votes = tuple(round_.votes)
        if settle.closed_as != "approved":
            return self._close(
                ReinstatementOutcome(status="denied", reason=settle.note or "denied", votes=votes)
            )
        approver = settle.decided_by[0]
        await store_step(
            REINSTATE_AGENT,
            Reinstatement(
                agent_id=request.agent_id,
                workflow_id=workflow.info().workflow_id,
                approver=approver,
                score=plan.restore_score,
                note=settle.note,
            ),
            AuditReceipt,
        )
        return self._close(
            ReinstatementOutcome(
                status="reinstated",
                reason=f"approved by {approver}",
                votes=votes,
                score=plan.restore_score,
            )
        )

    def _close(self, outcome: ReinstatementOutcome) -> ReinstatementOutcome:
        self._set_stage(Stage.CLOSED)
        return outcome

    def _set_stage(self, stage: Stage) -> None:
        self._stage = stage
        publish_stage(stage)

    async def _audit(
        self,
        request: ReinstatementRequest,
        step: str,
        event_type: str,
        payload: dict[str, object],
        actor: str | None = None,
    ) -> None:
        """A local write, as for actions; if it cannot be written the workflow fails and the
        agent is not reinstated."""
        await audit_step(
            audit_event(
                step,
                event_type,
                payload,
                agent_id=request.agent_id,
                action="reinstate",
                actor=actor or "proctor",
            )
        )
