"""GovernedActionWorkflow: one agent action from signed request to audited outcome.

Deterministic orchestration only: every fact from the outside world (identity, policy, the
time of the decision, vote keys, database writes) comes through an activity and is recorded in
history, so a replay decides exactly as the original run did, whatever the policy is today,
and a retried step writes exactly what the first attempt wrote.

Nothing that reaches the workflow is trusted for what it says about itself: the request must
belong to this workflow id and run once; a vote counts only when signed by the approver's key
or an approval service's; permission asks and handler reports must be signed by the agent,
or by the execution service the agent named in its signed request (then never by the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from proctor_server.workflows.step_options import (
    CLOSE_GRACE,
    NOTIFY_DEADLINE,
    NOTIFY_RETRY,
    NOTIFY_SETTLE,
    NOTIFY_TIMEOUT,
)
from proctor_server.workflows.steps import (
    audit_event,
    audit_step,
    local_store_step,
    publish_stage,
    signature_refusal,
    store_step,
    vote_payload,
    wait_until,
)

with workflow.unsafe.imports_passed_through():
    from proctor.attestation import ask_is_signed, report_is_signed
    from proctor.contract import (
        CANCEL_SIGNAL,
        CLOSE_APPROVAL_MESSAGES,
        DECIDE_SIGNAL,
        GOVERNED_ACTION_WORKFLOW,
        JUDGE_REQUEST,
        MAKE_GRANT,
        NOTIFY_APPROVERS,
        PROGRESS_QUERY,
        RECORD_OUTCOME,
        REMIND_APPROVERS,
        REPORT_RESULT_UPDATE,
        REQUEST_PERMISSION_UPDATE,
        RESOLVE_APPROVERS,
        tool_activity,
    )
    from proctor.grants.scope import agreed_grant, asks_for_grant
    from proctor.models import (
        ActionRequest,
        ActionStatus,
        AgentInfo,
        ApprovalCard,
        ApprovalClosed,
        ApprovalNotice,
        ApproverNames,
        AuditEvent,
        AuditReceipt,
        CancelRequest,
        Decision,
        Effect,
        ExecutionMode,
        GovernedActionInput,
        GrantDraft,
        GrantReceipt,
        HandlerReport,
        Judgement,
        JudgeRequest,
        NotifyResult,
        Outcome,
        OutcomeRecord,
        PendingApproval,
        Permission,
        PermissionRequest,
        Progress,
        RecordedVote,
        ReminderNotice,
        ResolvedApprovers,
        SlackMessageRef,
        Stage,
        ToolCall,
        ToolResult,
        TrustChange,
        Vote,
        is_approver_reference,
    )
    from proctor.trust import outcome_delta, trust_change
    from proctor_server.workflows.approval_round import (
        AddTier,
        ApprovalRound,
        Remind,
        Settle,
        TierCause,
    )


@workflow.defn(name=GOVERNED_ACTION_WORKFLOW)
class GovernedActionWorkflow:
    def __init__(self) -> None:
        self._stage = Stage.VERIFYING
        self._inbox: list[Vote] = []
        self._round: ApprovalRound | None = None
        self._request_digest = ""
        self._agent_keys: tuple[str, ...] = ()
        self._executor_keys: tuple[str, ...] = ()
        """The execution service's keys, when the request names one (see `_execution_keys`)."""
        self._executor: str | None = None
        self._judged = False
        self._permission_known = False
        self._execution_allowed = False
        self._final_status: ActionStatus | None = None
        self._asks = 0
        self._ask_ids: set[str] = set()
        self._claim_token: str | None = None
        self._report: HandlerReport | None = None
        self._outcome: Outcome | None = None
        self._cancel: CancelRequest | None = None
        self._audit_seqs: list[int] = []
        self._messages: list[SlackMessageRef] = []
        self._background: list[asyncio.Task[None]] = []
        self._agent: AgentInfo | None = None
        self._decision: Decision | None = None
        self._workflow_id = ""
        """The request's own workflow id (the judgement proved it is this workflow's): what
        votes and asks are bound to."""

    @workflow.run
    async def run(self, start: GovernedActionInput) -> Outcome:
        try:
            return await self._govern(start.request)
        except asyncio.CancelledError:
            # Cancellation requested through Temporal (UI, CLI): the supported way to stop an
            # action before it runs, like `proctor cancel`; once executing, it stops nothing.
            if (
                self._outcome is not None
                or self._claim_token is not None
                or (self._stage is Stage.EXECUTING)
            ):
                raise
            self._cancel = self._cancel or CancelRequest(
                by="temporal", reason="cancellation requested through Temporal"
            )
            decision = self._decision or Decision(
                effect=Effect.DENY,
                rule_id="cancelled",
                policy_version="-",
                reason="cancelled before it was judged",
            )
            return await self._finish(start.request, self._agent, decision, ActionStatus.CANCELLED)
        except ActivityError as exc:
            # A governance step (identity, audit) failed for good: fail closed, run nothing.
            self._final_status = ActionStatus.FAILED
            self._permission_known = True
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(
                f"governance step failed, the action was not executed: {_describe(exc)}",
                non_retryable=True,
            ) from exc

    async def _govern(self, request: ActionRequest) -> Outcome:
        info = workflow.info()
        # Judged at receipt (when the server started this workflow, not when a worker first
        # took it), in a regular activity: the verdict and decision are in history before
        # anything is written.
        judgement = await store_step(
            JUDGE_REQUEST,
            JudgeRequest(
                request=request,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                received_at=info.workflow_start_time,
            ),
            Judgement,
        )
        verdict = judgement.identity
        self._workflow_id = request.workflow_id
        self._request_digest = verdict.request_digest
        self._agent_keys = verdict.public_keys
        self._executor = request.execution.executor
        self._executor_keys = verdict.executor_keys
        self._judged = True
        if not verdict.verified or verdict.agent is None or judgement.decision is None:
            decision = Decision(
                effect=Effect.DENY,
                rule_id=f"identity:{verdict.refusal}",
                policy_version="-",
                reason=f"identity refused: {verdict.detail}",
            )
            await self._audit(
                request,
                "identity_refused",
                "identity_refused",
                {
                    "refusal": verdict.refusal,
                    "detail": verdict.detail,
                    "request_digest": verdict.request_digest,
                    "charged": verdict.provable,
                    "source": verdict.source,
                },
            )
            charge = None
            if verdict.provable and verdict.agent is not None and verdict.trust is not None:
                charge = trust_change(
                    verdict.agent.agent_id,
                    verdict.trust.refused_request,
                    f"request refused: {verdict.refusal}",
                    verdict.trust,
                )
            return await self._finish(request, None, decision, ActionStatus.DENIED, trust=charge)

        agent = self._agent = verdict.agent
        decision = self._decision = judgement.decision
        decided: dict[str, object] = {
            "request_digest": verdict.request_digest,
            "requested_at": request.requested_at.isoformat(),
            "params": request.params,
            "execution": request.execution.mode.value,
            "trust_score": agent.trust_score,
            "decision": decision.model_dump(mode="json"),
        }
        if verdict.delegation is not None:  # only then: older rows keep their exact payload
            decided["delegation"] = list(verdict.delegation.chain)
        await self._audit(request, "decided", "decided", decided)
        if decision.effect is Effect.DENY:
            return await self._finish(request, agent, decision, ActionStatus.DENIED)
        if decision.effect is Effect.ESCALATE:
            assert decision.escalation is not None
            refused = await self._await_approval(request, agent, decision, judgement)
            if refused is not None:
                return await self._finish(request, agent, decision, refused)
        return await self._execute(request, agent, decision)

    # --- messages -------------------------------------------------------------------------

    @workflow.signal(name=DECIDE_SIGNAL)
    def decide(self, vote: Vote) -> None:
        """An approver's answer. Signals can't be refused: the workflow judges and records it."""
        self._inbox.append(vote)

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self, request: CancelRequest) -> None:
        """`proctor cancel`: honoured until the action starts executing, audited either way."""
        if self._cancel is None:
            self._cancel = request

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return Progress(
            stage=self._stage,
            votes=self._recorded_votes(),
            pending=self._round.pending if self._round is not None else None,
            outcome=self._outcome,
        )

    @workflow.update(
        name=REQUEST_PERMISSION_UPDATE, unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON
    )
    async def request_permission(self, ask: PermissionRequest) -> Permission:
        """Handler mode: resolves when the action may run (to exactly one caller) or never will.

        Only an ask signed by the agent (or the execution service it named) counts. The
        newest ask waiting when permission comes gets it: a process that resubmits after a
        crash supersedes the dead one's ask, and the older ask is answered at once. A request
        arriving in the very task in which governance fails may be left unanswered: the
        client then reads the workflow's failure instead, which says the same (ABANDON)."""
        await workflow.wait_condition(lambda: self._judged or self._permission_known)
        if not self._execution_keys:  # identity refused (or governance failed): nothing runs
            await workflow.wait_condition(lambda: self._permission_known)
            return self._permission(False, "the action will not run")
        if not ask_is_signed(ask, self._workflow_id, self._execution_keys):
            return self._permission(False, f"the ask is not signed by the {self._signer}'s key")
        if ask.client_id in self._ask_ids:  # a signed ask copied from history
            return self._permission(False, "this ask was already made: a copy counts nothing")
        self._ask_ids.add(ask.client_id)
        if self._claim_token is not None:
            return self._permission(
                False,
                "another process holds the permission to execute; "
                "the outcome follows its report (or, if it never "
                "reports, `unknown` after the execution timeout)",
            )
        self._asks += 1
        mine = self._asks
        await workflow.wait_condition(lambda: self._permission_known or self._asks > mine)
        if self._asks > mine:
            return self._permission(False, "superseded by a later submission of this request")
        if self._execution_allowed and self._claim_token is None:
            self._claim_token = str(workflow.uuid4())
            return Permission(
                granted=True, claim_token=self._claim_token, stage=Stage.AWAITING_EXECUTION.value
            )
        return self._permission(
            False,
            "another process already holds the permission to execute"
            if self._execution_allowed
            else "the action will not run",
        )

    @property
    def _execution_keys(self) -> tuple[str, ...]:
        """Who may take the permission and report: the agent, or only the execution service
        the agent named (a request naming one is refused unless the service is active)."""
        return self._agent_keys if self._executor is None else self._executor_keys

    @property
    def _signer(self) -> str:
        return "agent" if self._executor is None else "execution service"

    def _permission(self, granted: bool, reason: str) -> Permission:
        return Permission(
            granted=granted, status=self._final_status, reason=reason, stage=self._stage.value
        )

    @workflow.update(name=REPORT_RESULT_UPDATE)
    async def report_result(self, report: HandlerReport) -> Outcome:
        self._report = report
        await workflow.wait_condition(lambda: self._outcome is not None)
        assert self._outcome is not None
        return self._outcome

    @report_result.validator
    def _validate_report(self, report: HandlerReport) -> None:
        if self._claim_token is None or report.claim_token != self._claim_token:
            raise ApplicationError("this process was not granted permission to execute")
        if not report_is_signed(report, self._execution_keys):
            raise ApplicationError(f"the report is not signed by the {self._signer}'s key")
        if self._report is not None:
            raise ApplicationError("the result was already reported")

    # --- the approval round ---------------------------------------------------------------

    async def _await_approval(
        self,
        request: ActionRequest,
        agent: AgentInfo,
        decision: Decision,
        judgement: Judgement,
    ) -> ActionStatus | None:
        """Wait for a quorum of authorised, signed approvals while reminders fall due and
        ladder tiers join; returns a final status if refused, cancelled or timed out, None to
        go ahead.

        The round (workflows/approval_round.py) decides; this loop feeds it votes and the
        time and carries out what it answers. Every time counts from the decision's time
        recorded in history (never from a task's clock), so a retried step computes the same
        deadline. Every wait is one durable timer to the next due moment (reminder, ladder
        step or deadline). Slack messages go out in the background: a Slack outage never
        holds up a decision.
        """
        round_ = await self._open_round(request, agent, decision, judgement)
        while True:
            if self._cancel is not None:
                cancelled = round_.cancel(self._cancel.by, self._cancel.reason)
                return self._close_round(request, round_, cancelled)
            while self._inbox:
                decided = await self._count_vote(request, round_, self._inbox.pop(0))
                if decided is not None:
                    status = self._close_round(request, round_, decided)
                    if status is None:  # approved by votes (never by a deadline)
                        await self._make_grant(request, decision, round_)
                    return status
            if await wait_until(round_.next_wake().at, self._vote_or_cancel_came):
                continue
            for due in round_.fire_due(workflow.now()):
                if isinstance(due, Settle):
                    return await self._time_out(request, round_, due)
                if isinstance(due, AddTier):
                    await self._add_tier(request, round_, due)
                else:
                    await self._remind(request, round_, due)

    def _vote_or_cancel_came(self) -> bool:
        return bool(self._inbox) or self._cancel is not None

    async def _open_round(
        self,
        request: ActionRequest,
        agent: AgentInfo,
        decision: Decision,
        judgement: Judgement,
    ) -> ApprovalRound:
        """Resolve the approvers, show the request as waiting, audit it and ask them."""
        assert decision.escalation is not None
        escalation, judged_at = decision.escalation, judgement.judged_at
        delegation = judgement.identity.delegation
        deadline = judged_at + timedelta(seconds=escalation.timeout_seconds)
        approvers, unresolved = await self._resolve(escalation.approvers)
        card = ApprovalCard(
            workflow_id=request.workflow_id,
            request_id=request.request_id,
            agent_id=request.agent_id,
            action=request.action,
            params=request.params,
            rule_id=decision.rule_id,
            reason=decision.reason,
            approvers=tuple(approvers),
            quorum=escalation.quorum,
            deadline=deadline,
            request_digest=self._request_digest,
            triggered_by=request.triggered_by,
            severity=escalation.severity,
            trust_score=agent.trust_score,
            delegation_chain=delegation.chain if delegation is not None else (),
            grant_max_seconds=escalation.grant_max_seconds,
        )
        pending = PendingApproval(
            card=card, owner=agent.owner, owner_may_approve=escalation.owner_may_approve
        )
        round_ = self._round = ApprovalRound(escalation, pending, started=judged_at)
        self._set_stage(Stage.AWAITING_APPROVAL, deadline)
        await self._audit(
            request,
            "escalated",
            "escalated",
            {
                "approvers": approvers,
                "quorum": escalation.quorum,
                "deadline": deadline.isoformat(),
                "on_timeout": escalation.on_timeout,
                "rule_id": decision.rule_id,
                "named": list(escalation.approvers),
                "unresolved": list(unresolved),
            },
        )
        self._in_background(
            self._slack(
                request,
                "notify:0",
                NOTIFY_APPROVERS,
                ApprovalNotice(
                    card=round_.card,
                    recipients=tuple(approvers),
                    channel=escalation.channel,
                    direct_messages=escalation.direct_messages,
                ),
            )
        )
        return round_

    async def _make_grant(
        self, request: ActionRequest, decision: Decision, round_: ApprovalRound
    ) -> None:
        """Approve and remember: when the approvals that decided ask for a standing grant,
        store the grant they agree on (its `grant_made` row written with it), or audit why
        none is made. The approval stands either way; a round without grant votes issues no
        command here, so histories recorded before grants replay unchanged."""
        approvals = [r.vote for r in round_.votes if r.accepted and r.vote.approve]
        if not asks_for_grant(approvals):
            return
        settings = round_.settings
        agreed = agreed_grant(
            approvals,
            rule_id=decision.rule_id,
            max_seconds=settings.grant_max_seconds,
            quorum=settings.quorum,
        )
        if isinstance(agreed, str):
            await self._refuse_grant(request, agreed)
            return
        draft = GrantDraft(
            grant_id=f"g-{workflow.uuid4().hex[:24]}",
            workflow_id=request.workflow_id,
            run_id=workflow.info().run_id,
            policy_file=decision.policy_file,
            request=request,
            votes=agreed.votes,
            scope=agreed.scope,
            expires_at=agreed.expires_at,
        )
        try:
            receipt = await local_store_step(MAKE_GRANT, draft, GrantReceipt)
        except (ActivityError, ApplicationError) as exc:
            refused = _grant_refusal(exc)
            if refused is None:
                raise  # the store failed for good: fail closed, as for any write
            await self._refuse_grant(request, refused)
            return
        self._audit_seqs.append(receipt.audit_seq)

    async def _refuse_grant(self, request: ActionRequest, reason: str) -> None:
        await self._audit(request, "grant_refused", "grant_refused", {"reason": reason})

    async def _count_vote(
        self, request: ActionRequest, round_: ApprovalRound, vote: Vote
    ) -> Settle | None:
        """Authentication and authorisation in the workflow itself, whatever channel a vote
        came through: signed by a trusted key of the approver or of the approval service, for
        this request, by someone allowed to decide it. Every vote is audited, counted or not."""
        unsigned = await signature_refusal(
            vote,
            workflow_id=self._workflow_id,
            request_digest=self._request_digest,
            agent_keys=self._agent_keys + self._executor_keys,  # neither ever votes
            escalated_at=round_.started,
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

    async def _add_tier(self, request: ActionRequest, round_: ApprovalRound, call: AddTier) -> None:
        tier, _ = await self._resolve(round_.settings.ladder[call.index].approvers)
        joined = round_.join_tier(call, tier)
        await self._audit(
            request,
            f"ladder:{joined.number}:{call.cause.value}",
            "ladder_step",
            {
                "tier": joined.number,
                "added": list(joined.joining),
                "cause": call.cause.value,
                "approvers": list(joined.approvers),
            },
        )
        self._in_background(
            self._slack(
                request,
                f"notify:{joined.number}",
                NOTIFY_APPROVERS,
                ApprovalNotice(
                    card=round_.card,
                    recipients=joined.joining,
                    channel=round_.settings.channel,
                    direct_messages=round_.settings.direct_messages,
                    tier=joined.number,
                    earlier=tuple(self._messages),
                ),
            )
        )
        if call.cause is TierCause.TIMEOUT:  # the deadline moved on
            self._set_stage(Stage.AWAITING_APPROVAL, round_.deadline)

    async def _remind(self, request: ActionRequest, round_: ApprovalRound, due: Remind) -> None:
        waiting_on = list(round_.awaiting())
        await self._audit(
            request,
            f"reminder:{due.number}",
            "reminder",
            {"reminder": due.number, "pending_approvers": waiting_on},
        )
        self._in_background(
            self._slack(
                request,
                f"reminder:{due.number}",
                REMIND_APPROVERS,
                ReminderNotice(
                    card=round_.card,
                    pending=tuple(waiting_on),
                    number=due.number,
                    messages=tuple(self._messages),
                ),
            )
        )

    async def _time_out(
        self, request: ActionRequest, round_: ApprovalRound, settle: Settle
    ) -> ActionStatus | None:
        await self._audit(
            request,
            "approval_timed_out",
            "approval_timed_out",
            {
                "approvals": list(round_.approvals),
                "quorum": round_.settings.quorum,
                "on_timeout": round_.settings.on_timeout,
            },
        )
        return self._close_round(request, round_, settle)

    def _close_round(
        self, request: ActionRequest, round_: ApprovalRound, settle: Settle
    ) -> ActionStatus | None:
        """Every message about the request shows how it ended (in the background)."""
        flying = [task for task in self._background if not task.done()]
        self._in_background(
            self._close_messages(
                request,
                flying,
                ApprovalClosed(
                    card=round_.card,
                    messages=(),
                    status=settle.closed_as,
                    decided_by=settle.decided_by,
                    note=settle.note,
                    at=workflow.now(),
                ),
            )
        )
        return settle.status

    # --- Slack, in the background ---------------------------------------------------------

    async def _resolve(self, names: tuple[str, ...]) -> tuple[list[str], tuple[str, ...]]:
        """Roles and Slack user groups to identities, once, recorded in history."""
        if not any(is_approver_reference(name) for name in names):
            return list(names), ()
        resolved = await workflow.execute_activity(
            RESOLVE_APPROVERS,
            ApproverNames(names=names),
            result_type=ResolvedApprovers,
            start_to_close_timeout=NOTIFY_TIMEOUT,
            schedule_to_close_timeout=NOTIFY_DEADLINE,
            retry_policy=NOTIFY_RETRY,
        )
        return list(resolved.approvers), resolved.unresolved

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        self._background.append(asyncio.create_task(work))

    async def _slack(
        self,
        request: ActionRequest,
        step: str,
        activity: str,
        notice: ApprovalNotice | ReminderNotice | ApprovalClosed,
    ) -> None:
        """One Slack step; its messages are remembered (to close them later) and audited.
        A failure is audited and otherwise ignored: the CLI still decides."""
        try:
            result = await workflow.execute_activity(
                activity,
                notice,
                result_type=NotifyResult,
                start_to_close_timeout=NOTIFY_TIMEOUT,
                schedule_to_close_timeout=NOTIFY_DEADLINE,
                retry_policy=NOTIFY_RETRY,
                heartbeat_timeout=NOTIFY_TIMEOUT,
            )
        except ActivityError as exc:
            with contextlib.suppress(ActivityError):
                await self._audit(
                    request,
                    f"{step}:failed",
                    "notification_failed",
                    {"step": step, "error": _describe(exc)},
                )
            return
        if activity == NOTIFY_APPROVERS:
            self._messages.extend(result.messages)
        if result.skipped is None and (result.messages or result.undelivered):
            kind = "messages_closed" if activity == CLOSE_APPROVAL_MESSAGES else "notified"
            with contextlib.suppress(ActivityError):
                await self._audit(
                    request,
                    step,
                    kind,
                    {
                        "step": step,
                        "undelivered": list(result.undelivered),
                        "messages": [m.model_dump() for m in result.messages],
                    },
                )

    async def _close_messages(
        self, request: ActionRequest, flying: list[asyncio.Task[None]], closed: ApprovalClosed
    ) -> None:
        """Show the outcome on every message, once the notifications `flying` have landed (or
        given up after NOTIFY_SETTLE)."""
        if any(not task.done() for task in flying):
            try:
                await workflow.wait_condition(
                    lambda: all(t.done() for t in flying), timeout=NOTIFY_SETTLE
                )
            except TimeoutError:
                for task in flying:
                    task.cancel()
        if self._messages:
            await self._slack(
                request,
                "close",
                CLOSE_APPROVAL_MESSAGES,
                closed.model_copy(update={"messages": tuple(self._messages)}),
            )

    async def _execute(
        self, request: ActionRequest, agent: AgentInfo, decision: Decision
    ) -> Outcome:
        spec = request.execution
        if spec.mode is ExecutionMode.TOOL:
            if self._cancel is not None:  # asked before the tool started: it never runs
                return await self._finish(request, agent, decision, ActionStatus.CANCELLED)
            self._set_stage(Stage.EXECUTING)
            try:
                done = await workflow.execute_activity(
                    tool_activity(request.action),
                    ToolCall(
                        request_id=request.request_id, action=request.action, params=request.params
                    ),
                    result_type=ToolResult,
                    task_queue=spec.task_queue,
                    start_to_close_timeout=timedelta(seconds=spec.timeout_seconds),
                    retry_policy=RetryPolicy(maximum_attempts=spec.max_attempts),
                )
            except ActivityError as exc:
                return await self._finish(
                    request, agent, decision, ActionStatus.FAILED, error=_describe(exc)
                )
            return await self._finish(
                request, agent, decision, ActionStatus.COMPLETED, result=done.result
            )

        self._execution_allowed = True
        self._permission_known = True
        self._set_stage(Stage.AWAITING_EXECUTION)
        try:
            # A cancel counts until a process has taken the permission.
            await workflow.wait_condition(
                lambda: (
                    self._report is not None
                    or (self._cancel is not None and self._claim_token is None)
                ),
                timeout=spec.timeout_seconds,
            )
        except TimeoutError:
            if self._claim_token is None:
                return await self._finish(
                    request,
                    agent,
                    decision,
                    ActionStatus.FAILED,
                    error=f"no agent process took the permission within "
                    f"{spec.timeout_seconds:.0f}s: the action did not run",
                )
            return await self._finish(
                request,
                agent,
                decision,
                ActionStatus.UNKNOWN,
                error=f"the process granted permission did not report within "
                f"{spec.timeout_seconds:.0f}s: it may or may not have run",
            )
        if self._report is None:
            self._execution_allowed = False
            return await self._finish(request, agent, decision, ActionStatus.CANCELLED)
        report = self._report
        assert report is not None
        if report.succeeded:
            return await self._finish(
                request, agent, decision, ActionStatus.COMPLETED, result=report.result
            )
        return await self._finish(
            request,
            agent,
            decision,
            ActionStatus.FAILED,
            error=report.error or "the handler failed",
        )

    async def _finish(
        self,
        request: ActionRequest,
        agent: AgentInfo | None,
        decision: Decision,
        status: ActionStatus,
        *,
        result: object = None,
        error: str | None = None,
        trust: TrustChange | None = None,
    ) -> Outcome:
        """Record the outcome and its trust change (the outcome's weight for a verified agent,
        or the `trust` given), answer waiting handlers, and close."""
        self._final_status = status
        self._permission_known = True
        cancel, actor = self._cancel, None
        if status is ActionStatus.CANCELLED and cancel is not None:
            error, actor = f"cancelled: {cancel.reason}", cancel.by  # who: the row's actor
        elif cancel is not None:  # came too late: the action was executing or decided
            await self._audit(
                request,
                "cancel_refused",
                "cancel_refused",
                {
                    "reason": cancel.reason,
                    "status": status.value,
                    "why": "the action had already started executing or was decided",
                },
                actor=cancel.by,
            )
        if agent is not None:
            trust = trust_change(
                agent.agent_id,
                outcome_delta(status, decision.trust),
                f"action {status.value}",
                decision.trust,
            )
        receipt = await local_store_step(
            RECORD_OUTCOME,
            OutcomeRecord(
                event=self._event(
                    request,
                    "outcome",
                    "outcome",
                    {
                        "status": status.value,
                        "rule_id": decision.rule_id,
                        "policy_version": decision.policy_version,
                        "result": result,
                        "error": error,
                        "approvals": [
                            v.vote.approver
                            for v in self._recorded_votes()
                            if v.accepted and v.vote.approve
                        ],
                    },
                    actor=actor,
                ),
                trust=trust,
            ),
            AuditReceipt,
        )
        self._audit_seqs.append(receipt.seq)
        self._outcome = Outcome(
            request_id=request.request_id,
            workflow_id=request.workflow_id,
            status=status,
            decision=decision,
            approvals=self._recorded_votes(),
            result=result,
            error=error,
            audit_seqs=tuple(self._audit_seqs),
        )
        self._set_stage(Stage.CLOSED)
        if any(not task.done() for task in self._background):
            # Let the messages show the decision (bounded: Slack may be down).
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: all(task.done() for task in self._background), timeout=CLOSE_GRACE
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome

    async def _audit(
        self,
        request: ActionRequest,
        step: str,
        event_type: str,
        payload: dict[str, object],
        *,
        actor: str | None = None,
    ) -> None:
        """Append one step; if it cannot be written the workflow fails and nothing executes."""
        receipt = await audit_step(self._event(request, step, event_type, payload, actor=actor))
        self._audit_seqs.append(receipt.seq)

    def _event(
        self,
        request: ActionRequest,
        step: str,
        event_type: str,
        payload: dict[str, object],
        *,
        actor: str | None = None,
    ) -> AuditEvent:
        return audit_event(
            step,
            event_type,
            payload,
            agent_id=request.agent_id,
            action=request.action,
            actor=actor or request.agent_id,
        )

    def _set_stage(self, stage: Stage, deadline: datetime | None = None) -> None:
        self._stage = stage
        publish_stage(stage, deadline)

    def _recorded_votes(self) -> tuple[RecordedVote, ...]:
        return tuple(self._round.votes) if self._round is not None else ()


def _grant_refusal(exc: ActivityError | ApplicationError) -> str | None:
    """Why the store refused the grant (`InvalidGrant`: its `when` does not compile), or None
    for any other failure. A local activity's error reaches the workflow as it was raised; a
    regular activity's comes wrapped in an ActivityError."""
    failure = exc.cause if isinstance(exc, ActivityError) else exc
    if isinstance(failure, ApplicationError) and failure.type == "InvalidGrant":
        return str(failure)
    return None


def _describe(exc: ActivityError) -> str:
    cause = exc.cause
    return str(cause) if cause is not None else str(exc)
