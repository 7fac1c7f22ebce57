"""judge_request: identity, policy and rate admission of one request, in one activity.

A regular (not local) activity on purpose: its result is recorded in history before the
workflow writes anything, so a worker killed after an audit commit resumes with the very same
verdict, decision and time, and the retried write is identical (never "idempotency key already
used for a different event").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from proctor.contract import JUDGE_REQUEST, step_key
from proctor.identity import IdentityJudge
from proctor.metrics import FORGED_REQUESTS, SHADOW_DECISIONS, forged_source
from proctor.models import (
    AuditEvent,
    Decision,
    Effect,
    IdentityVerdict,
    Judgement,
    JudgeRequest,
    PolicyQuery,
    RateCheck,
)
from proctor.policy import PolicyEngine
from proctor.policy.escalation import asks_default_approvers, with_default_approvers
from proctor.policy.shadow import SHADOW_EVENT, ShadowDecision
from proctor.stores.audit_log import AuditLog
from proctor.stores.rates import RateStore


class JudgementActivities:
    def __init__(
        self,
        identity: IdentityJudge,
        policy: Callable[[], PolicyEngine],
        rates: RateStore,
        default_approvers: Callable[[], tuple[str, ...]] = tuple,
        audit: AuditLog | None = None,
    ) -> None:
        """`policy` returns the set in force (a reload swaps it atomically);
        `default_approvers` who decides an escalation whose rule names nobody, as of now;
        `audit` where shadow decisions are recorded (None: they are not computed)."""
        self.identity = identity
        self.policy = policy
        self.rates = rates
        self.default_approvers = default_approvers
        self.audit = audit

    @activity.defn(name=JUDGE_REQUEST)
    async def judge_request(self, ask: JudgeRequest) -> Judgement:
        request = ask.request
        verdict = await self.identity.judge(
            request, workflow_id=ask.workflow_id, run_id=ask.run_id, received_at=ask.received_at
        )
        judged_at = datetime.now(UTC)
        if not verdict.verified or verdict.agent is None:
            if not verdict.provable:
                verdict = verdict.model_copy(update={"source": await _starter()})
                FORGED_REQUESTS.labels(
                    source=forged_source(verdict.source), refusal=verdict.refusal or "unknown"
                ).inc()
            return Judgement(identity=verdict, judged_at=judged_at)
        engine = self.policy()
        query = PolicyQuery(
            agent=verdict.agent,
            action=request.action,
            params=request.params,
            request_id=request.request_id,
            requested_at=request.requested_at,
        )
        decision = engine.decide(query, at=judged_at)
        if self.audit is not None:
            shadow = engine.shadow_decide(query, decision, at=judged_at)
            if shadow is not None:
                await self._record_shadow(ask, verdict.agent.agent_id, shadow)
        if decision.rate_limits and decision.effect is not Effect.DENY:
            decision = await self._admit(verdict, decision, request.request_id, request.action)
        if asks_default_approvers(decision):
            decision = with_default_approvers(decision, self.default_approvers())
        return Judgement(identity=verdict, decision=decision, judged_at=judged_at)

    async def _record_shadow(
        self, ask: JudgeRequest, agent_id: str, shadow: ShadowDecision
    ) -> None:
        """The shadow decision as an audit row next to the enforced one, written and counted
        once per run: a retried judgement finds it there and leaves it (if a reload changed
        the answer in between, the first one stands)."""
        assert self.audit is not None
        key = step_key(ask.workflow_id, ask.run_id, "shadow")
        written = await self.audit.for_workflow(ask.workflow_id, event_types=(SHADOW_EVENT,))
        if any(row.idempotency_key == key for row in written):
            return
        await self.audit.append(
            AuditEvent(
                idempotency_key=key,
                event_type=SHADOW_EVENT,
                workflow_id=ask.workflow_id,
                agent_id=agent_id,
                action=ask.request.action,
                actor="proctor",
                payload=shadow.payload(),
            )
        )
        agreement = "agree" if shadow.agree else "disagree"
        SHADOW_DECISIONS.labels(agreement=agreement, rule=shadow.rule).inc()

    async def _admit(
        self, verdict: IdentityVerdict, decision: Decision, request_id: str, action: str
    ) -> Decision:
        """Over a rate limit, the decision becomes a deny."""
        assert verdict.agent is not None
        rate = await self.rates.admit(
            RateCheck(
                agent_id=verdict.agent.agent_id,
                request_id=request_id,
                action=action,
                escalated=decision.effect is Effect.ESCALATE,
                limits=decision.rate_limits,
            )
        )
        if rate.admitted:
            return decision
        return Decision(
            effect=Effect.DENY,
            rule_id="rate-limit",
            policy_file=decision.policy_file,
            policy_version=decision.policy_version,
            reason=f"rate limit exceeded: {rate.exceeded}",
            trust=decision.trust,
        )


async def _starter() -> str | None:
    """The client identity Temporal recorded for whoever started this workflow."""
    info = activity.info()
    if info.workflow_id is None:
        return None
    try:
        handle = activity.client().get_workflow_handle(
            info.workflow_id, run_id=info.workflow_run_id
        )
        async for event in handle.fetch_history_events():
            identity = event.workflow_execution_started_event_attributes.identity
            return identity[:256] or None  # chosen by the starter: kept short
    except Exception:
        return None
    return None
