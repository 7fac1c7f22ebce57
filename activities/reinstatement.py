"""plan_reinstatement / reinstate_agent: the Postgres and policy side of a reinstatement."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity

from proctor.contract import PLAN_REINSTATEMENT, REINSTATE_AGENT
from proctor.models import (
    AgentStatus,
    AuditEvent,
    AuditReceipt,
    Reinstatement,
    ReinstatementPlan,
    ReinstatementRequest,
)
from proctor.policy import PolicyEngine
from proctor.stores.agents import AgentStore, restore_agent
from proctor.stores.audit_log import AuditLog, append_locked, existing_receipt, lock_chain

FALLBACK_SCORE = 50.0


class ReinstatementActivities:
    def __init__(
        self,
        agents: AgentStore,
        audit: AuditLog,
        policy: Callable[[], PolicyEngine],
        default_approvers: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        """`default_approvers`: who decides escalations whose rule names nobody, as of now
        (they may reinstate an agent whose policy leaves a rule to them)."""
        self.agents = agents
        self.audit = audit
        self.policy = policy
        self.default_approvers = default_approvers

    @activity.defn(name=PLAN_REINSTATEMENT)
    async def plan_reinstatement(self, request: ReinstatementRequest) -> ReinstatementPlan:
        record = await self.agents.get(request.agent_id)
        if record is None:
            return ReinstatementPlan(agent=None, problem=f"no agent {request.agent_id!r}")
        agent = record.info
        if agent.status is not AgentStatus.SUSPENDED:
            return ReinstatementPlan(
                agent=agent,
                problem=(f"agent {agent.agent_id!r} is {agent.status.value}, not suspended"),
            )
        engine = self.policy()
        trust = engine.trust_policy(agent)
        score = (
            request.restore_score
            or trust.recovery_threshold
            or trust.minimum_score
            or FALLBACK_SCORE
        )
        named = engine.approvers_for(agent)
        defaults = self.default_approvers() if engine.leaves_approvers_to_defaults(agent) else ()
        approvers = tuple(dict.fromkeys([agent.owner, *named, *defaults]))
        return ReinstatementPlan(agent=agent, approvers=approvers, restore_score=score)

    @activity.defn(name=REINSTATE_AGENT)
    async def reinstate_agent(self, order: Reinstatement) -> AuditReceipt:
        """Status back to active at the planned score, and the audit row: one transaction."""
        event = AuditEvent(
            idempotency_key=f"{order.workflow_id}:reinstated",
            event_type="agent_reinstated",
            workflow_id=order.workflow_id,
            agent_id=order.agent_id,
            action="reinstate",
            actor=order.approver,
            payload={"score": order.score, "note": order.note},
        )
        async with self.audit.pool.acquire() as conn, conn.transaction():
            await lock_chain(conn)
            found = await existing_receipt(conn, event)
            if found is not None:
                return found
            await restore_agent(conn, order.agent_id, order.score)
            return await append_locked(conn, event)
