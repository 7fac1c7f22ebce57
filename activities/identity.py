"""verify_identity: is this request really from a registered, active agent, fresh and unique?"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import activity

from proctor.canonical import digest
from proctor.contract import VERIFY_IDENTITY
from proctor.models import ActionRequest, AgentInfo, AgentStatus, IdentityVerdict
from proctor.policy import PolicyEngine
from proctor.signing import AgentKeyError, verify_request
from proctor.stores.agents import AgentStore
from proctor.stores.nonces import NonceStore


class IdentityActivities:
    def __init__(self, agents: AgentStore, nonces: NonceStore, window_seconds: float,
                 policy: Callable[[], PolicyEngine]) -> None:
        """`policy` gives the trust settings a refusal is charged by."""
        self.agents = agents
        self.nonces = nonces
        self.window_seconds = window_seconds
        self.policy = policy

    @activity.defn(name=VERIFY_IDENTITY)
    async def verify_identity(self, request: ActionRequest,
                              received_at: datetime | None = None) -> IdentityVerdict:
        """`received_at`: when the server took the request (the workflow's start); workflows
        from before local steps don't pass it, and this attempt's schedule time stands in."""
        request_digest = digest(request.signing_payload())
        record = await self.agents.get(request.agent_id)
        if record is None:
            return self._refuse(request, request_digest, None, "unknown_agent",
                                f"agent {request.agent_id!r} is not registered")
        agent = record.info

        def refuse(code: str, detail: str) -> IdentityVerdict:
            return self._refuse(request, request_digest, agent, code, detail)

        if agent.status is not AgentStatus.ACTIVE:
            return refuse(f"{agent.status.value}_agent",
                          f"agent {request.agent_id!r} is {agent.status.value}")
        if not request.signature:
            return refuse("missing_signature", "the request carries no signature")
        # Judge at receipt (when the workflow first asked), not at this attempt: a retry
        # after a database outage must not turn a fresh request stale or an old key invalid.
        received_at = received_at or activity.info().scheduled_time
        try:
            valid = any(verify_request(request, pem)
                        for pem in record.keys_valid_at(received_at))
        except AgentKeyError as exc:
            return refuse("unusable_key", str(exc))
        if not valid:
            return refuse("bad_signature", "the signature does not match the request and any "
                                           "key valid for this agent")
        skew = abs((received_at - request.requested_at).total_seconds())
        if skew > self.window_seconds:
            return refuse("stale_request",
                          f"requested_at is {skew:.0f}s from the time Proctor received it "
                          f"(window ±{self.window_seconds:.0f}s)")
        if not await self.nonces.claim(request.agent_id, request.nonce, request.request_id):
            return refuse("replayed_nonce", "this nonce was already used by another request")
        return IdentityVerdict(verified=True, agent=agent, request_digest=request_digest)

    def _refuse(self, request: ActionRequest, request_digest: str, agent: AgentInfo | None,
                code: str, detail: str) -> IdentityVerdict:
        activity.logger.warning("identity refused for %s: %s", request.agent_id, code)
        return IdentityVerdict(
            verified=False, agent=agent, refusal=code, detail=detail,
            request_digest=request_digest,
            trust=self.policy().trust_policy(agent) if agent is not None else None,
        )
