"""judge_request: identity, policy and rate admission of one request, in one activity.

A regular (not local) activity on purpose: its result is recorded in history before the
workflow writes anything, so a worker killed after an audit commit resumes with the very same
verdict, decision and time, and the retried write is identical (never "idempotency key already
used for a different event").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from proctor.approvals.keys import VoteKeyDirectory
from proctor.contract import JUDGE_REQUEST, step_key
from proctor.grants.cover import Coverage, CoverQuery, covering_grants, grantable
from proctor.identity import IdentityJudge
from proctor.metrics import FORGED_REQUESTS, GRANT_USES, SHADOW_DECISIONS, forged_source
from proctor.models import (
    AuditEvent,
    Decision,
    DelegationView,
    Effect,
    IdentityVerdict,
    Judgement,
    JudgeRequest,
    PolicyQuery,
    RateCheck,
)
from proctor.policy import PolicyEngine
from proctor.policy.decide import condition_context
from proctor.policy.escalation import asks_default_approvers, with_default_approvers
from proctor.policy.shadow import SHADOW_EVENT, ShadowDecision
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore
from proctor.stores.rates import RateStore

GRANT_USED_EVENT = "grant_used"
GRANT_MADE_EVENT = "grant_made"
GRANT_USE_STEP = "grant_use"


class JudgementActivities:
    def __init__(
        self,
        identity: IdentityJudge,
        policy: Callable[[], PolicyEngine],
        rates: RateStore,
        default_approvers: Callable[[], tuple[str, ...]] = tuple,
        audit: AuditLog | None = None,
        grants: GrantStore | None = None,
        vote_keys: Callable[[], VoteKeyDirectory] | None = None,
    ) -> None:
        """`policy` returns the set in force (a reload swaps it atomically);
        `default_approvers` who decides an escalation whose rule names nobody, as of now;
        `audit` where shadow decisions are recorded (None: they are not computed);
        `grants` the standing grants that may cover an escalation, their votes checked
        against `vote_keys` (the trusted directory as it is now; without both, none do)."""
        self.identity = identity
        self.policy = policy
        self.rates = rates
        self.default_approvers = default_approvers
        self.audit = audit
        self.grants = grants
        self.vote_keys = vote_keys

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
            delegation=verdict.delegation or DelegationView(),
        )
        decision = engine.decide(query, at=judged_at)
        if self.audit is not None:
            shadow = engine.shadow_decide(query, decision, at=judged_at)
            if shadow is not None:
                await self._record_shadow(ask, verdict.agent.agent_id, shadow)
        if grantable(decision) is not None:
            decision = await self._grant_cover(ask, verdict, decision, query, judged_at)
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

    async def _grant_cover(
        self,
        ask: JudgeRequest,
        verdict: IdentityVerdict,
        decision: Decision,
        query: PolicyQuery,
        judged_at: datetime,
    ) -> Decision:
        """The escalation allowed by a standing grant that covers the request (checked from
        its signed votes, see proctor.grants.cover) and is still usable, or unchanged. One
        grant per run: a retried judgement finds the grant its run used and uses it again
        (the store counts it once), never a second one."""
        if self.grants is None or self.vote_keys is None or verdict.agent is None:
            return decision
        if decision.escalation is None or decision.escalation.grant_max_seconds is None:
            return decision
        used = await self._used_by_run(ask)
        if used is not None:
            known = await self.grants.get(used)
            candidates = [known] if known is not None else []
        else:
            candidates = await self.grants.live_for(
                verdict.agent.agent_id, ask.request.action, judged_at
            )
        if not candidates:
            return decision
        cover = self._cover_query(ask, verdict, decision, query, judged_at)
        for found in covering_grants(candidates, cover):
            # The workflow the votes signed for, never the row's own column.
            if not await self._made_in_ledger(
                found.grant.grant_id, found.grant.request.workflow_id
            ):
                continue
            event = self._use_event(ask, decision, found)
            if await self.grants.use(
                found.grant.grant_id, workflow_id=ask.workflow_id, run_id=ask.run_id, event=event
            ):
                if used is None:
                    GRANT_USES.labels(rule=decision.rule_id).inc()
                uses = found.grant.uses + (1 if used is None else 0)
                return _allowed_by(decision, found, uses)
        return decision

    def _cover_query(
        self,
        ask: JudgeRequest,
        verdict: IdentityVerdict,
        decision: Decision,
        query: PolicyQuery,
        judged_at: datetime,
    ) -> CoverQuery:
        """What a grant is checked against: the decision with the approvers who would be
        asked (the default ones when the rule names nobody), the conditions' context, the
        trusted vote keys, and who may never have made it."""
        assert self.vote_keys is not None and verdict.agent is not None
        named = (
            with_default_approvers(decision, self.default_approvers())
            if asks_default_approvers(decision)
            else decision
        )
        directory = self.vote_keys()
        return CoverQuery(
            request=ask.request,
            decision=named,
            context=condition_context(query, judged_at),
            keys=directory.keys_for,
            agent_keys=verdict.public_keys + verdict.executor_keys,
            at=judged_at,
            chain=query.delegation.chain,
            owner=verdict.agent.owner,
        )

    async def _made_in_ledger(self, grant_id: str, workflow_id: str) -> bool:
        """Whether the workflow whose round made the grant recorded it (`grant_made`). Signed
        votes can't prove the round counted them (an approval that came after a veto is
        signed too): a grant row planted in the database without its ledger row covers
        nothing, and one planted with it breaks the hash chain."""
        assert self.grants is not None
        rows = await self.grants.audit.for_workflow(workflow_id, event_types=(GRANT_MADE_EVENT,))
        return any(_payload_grant_id(row.payload) == grant_id for row in rows)

    async def _used_by_run(self, ask: JudgeRequest) -> str | None:
        """The grant this run already used (a retried judgement), from its `grant_used` row."""
        assert self.grants is not None
        key = step_key(ask.workflow_id, ask.run_id, GRANT_USE_STEP)
        rows = await self.grants.audit.for_workflow(
            ask.workflow_id, event_types=(GRANT_USED_EVENT,)
        )
        for row in rows:
            if row.idempotency_key == key:
                return _payload_grant_id(row.payload)
        return None

    def _use_event(self, ask: JudgeRequest, decision: Decision, found: Coverage) -> AuditEvent:
        """The `grant_used` row: the same for every attempt of this run with this grant."""
        return AuditEvent(
            idempotency_key=step_key(ask.workflow_id, ask.run_id, GRANT_USE_STEP),
            event_type=GRANT_USED_EVENT,
            workflow_id=ask.workflow_id,
            agent_id=ask.request.agent_id,
            action=ask.request.action,
            actor="proctor",
            payload={
                "grant_id": found.grant.grant_id,
                "request_id": ask.request.request_id,
                "rule_id": decision.rule_id,
                "policy_version": decision.policy_version,
                "made_by": list(found.approvers),
                "expires_at": found.expires_at.isoformat(),
                "max_uses": found.scope.max_uses,
            },
        )

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


def _allowed_by(decision: Decision, found: Coverage, uses: int) -> Decision:
    """The escalation a grant covers, allowed under the grant's name: the rule that escalated
    stays on record (`also_matched`), and rate limits still apply."""
    return Decision(
        effect=Effect.ALLOW,
        rule_id=f"grant:{found.grant.grant_id}",
        policy_file=decision.policy_file,
        policy_version=decision.policy_version,
        reason=found.reason(uses),
        rate_limits=decision.rate_limits,
        trust=decision.trust,
        also_matched=(decision.rule_id,),
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


def _payload_grant_id(payload: str) -> str | None:
    """The `grant_id` an audit row of a grant names."""
    grant_id = json.loads(payload).get("grant_id")
    return grant_id if isinstance(grant_id, str) else None
