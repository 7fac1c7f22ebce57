"""verify_identity: is this request really from a registered, active agent, fresh and unique?"""

from __future__ import annotations

from temporalio import activity

from proctor.canonical import digest
from proctor.contract import VERIFY_IDENTITY
from proctor.models import ActionRequest, AgentStatus, IdentityVerdict
from proctor.signing import AgentKeyError, verify_request
from proctor.stores.agents import AgentStore
from proctor.stores.nonces import NonceStore


class IdentityActivities:
    def __init__(self, agents: AgentStore, nonces: NonceStore, window_seconds: float) -> None:
        self.agents = agents
        self.nonces = nonces
        self.window_seconds = window_seconds

    @activity.defn(name=VERIFY_IDENTITY)
    async def verify_identity(self, request: ActionRequest) -> IdentityVerdict:
        request_digest = digest(request.signing_payload())

        def refuse(code: str, detail: str) -> IdentityVerdict:
            activity.logger.warning("identity refused for %s: %s", request.agent_id, code)
            return IdentityVerdict(verified=False, refusal=code, detail=detail,
                                   request_digest=request_digest)

        record = await self.agents.get(request.agent_id)
        if record is None:
            return refuse("unknown_agent", f"agent {request.agent_id!r} is not registered")
        if record.info.status is not AgentStatus.ACTIVE:
            return refuse(f"{record.info.status.value}_agent",
                          f"agent {request.agent_id!r} is {record.info.status.value}")
        if not request.signature:
            return refuse("missing_signature", "the request carries no signature")
        try:
            valid = verify_request(request, record.public_key_pem)
        except AgentKeyError as exc:
            return refuse("unusable_key", str(exc))
        if not valid:
            return refuse("bad_signature", "the signature does not match the request and key")
        # Judge freshness at receipt (when the workflow first asked), not at this attempt:
        # a retry after a database outage must not turn a fresh request stale.
        received_at = activity.info().scheduled_time
        skew = abs((received_at - request.requested_at).total_seconds())
        if skew > self.window_seconds:
            return refuse("stale_request",
                          f"requested_at is {skew:.0f}s from the time Proctor received it "
                          f"(window ±{self.window_seconds:.0f}s)")
        if not await self.nonces.claim(request.agent_id, request.nonce, request.request_id):
            return refuse("replayed_nonce", "this nonce was already used by another request")
        return IdentityVerdict(verified=True, agent=record.info, request_digest=request_digest)
