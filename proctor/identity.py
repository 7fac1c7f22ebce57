"""Identity of a request: is it really from a registered, active agent, fresh, and unused?

Refusals say whether they are *provable*: only a request carrying a valid signature of one of
the agent's keys can be the agent's doing (a stale timestamp, a nonce reused for a different
request, a retired key). Forged, unsigned and byte-identical copies of a genuine request are
somebody else's doing, and never cost the named agent trust.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from proctor.canonical import digest
from proctor.models import ActionRequest, AgentInfo, AgentStatus, IdentityVerdict, TrustPolicy
from proctor.signing import AgentKeyError, verify_request
from proctor.stores.agents import AgentRecord, AgentStore
from proctor.stores.nonces import NonceClaim, NonceStore

log = logging.getLogger(__name__)


class IdentityJudge:
    def __init__(
        self,
        agents: AgentStore,
        nonces: NonceStore,
        window_seconds: float,
        trust_policy: Callable[[AgentInfo], TrustPolicy],
    ) -> None:
        """`trust_policy` gives the settings a provable refusal is charged by."""
        self.agents = agents
        self.nonces = nonces
        self.window_seconds = window_seconds
        self.trust_policy = trust_policy

    async def judge(
        self, request: ActionRequest, *, workflow_id: str, run_id: str, received_at: datetime
    ) -> IdentityVerdict:
        """Judged at receipt (`received_at`: when the server started the workflow), so a retry
        after an outage never turns a fresh request stale or an old key invalid."""
        request_digest = digest(request.signing_payload())
        if workflow_id != request.workflow_id:
            return self._refuse(
                request,
                request_digest,
                None,
                "wrong_workflow_id",
                f"the request belongs to workflow {request.workflow_id!r}, not {workflow_id!r}",
                provable=False,
            )
        record = await self.agents.get(request.agent_id)
        if record is None:
            return self._refuse(
                request,
                request_digest,
                None,
                "unknown_agent",
                f"agent {request.agent_id!r} is not registered",
                provable=False,
            )
        agent = record.info

        def refuse(code: str, detail: str, provable: bool) -> IdentityVerdict:
            return self._refuse(request, request_digest, agent, code, detail, provable)

        if not request.signature:
            return refuse("missing_signature", "the request carries no signature", False)
        try:
            valid_now = any(
                verify_request(request, pem) for pem in record.keys_valid_at(received_at)
            )
            signed_by_agent = valid_now or any(
                verify_request(request, pem) for pem in _all_keys(record)
            )
        except AgentKeyError as exc:
            return refuse("unusable_key", str(exc), False)
        if not signed_by_agent:
            return refuse(
                "bad_signature",
                "the signature does not match the request and any key of this agent",
                False,
            )
        # The nonce first: a copy of a genuine request is nobody's misbehaviour but the
        # copier's, whatever else is wrong with it now (a retired key, a suspended agent).
        claim = await self.nonces.claim(
            request.agent_id,
            request.nonce,
            request.request_id,
            run_id=run_id,
            request_digest=request_digest,
        )
        if claim is NonceClaim.COPIED:
            return refuse(
                "replayed_request",
                "this exact signed request already ran: a copy runs nothing",
                False,
            )
        if claim is NonceClaim.REUSED:
            return refuse("replayed_nonce", "this nonce was already used by another request", True)
        if not valid_now:
            return refuse(
                "retired_key", "signed with a key of this agent whose grace period had ended", True
            )
        if agent.status is not AgentStatus.ACTIVE:
            return refuse(
                f"{agent.status.value}_agent",
                f"agent {request.agent_id!r} is {agent.status.value}",
                True,
            )
        skew = abs((received_at - request.requested_at).total_seconds())
        if skew > self.window_seconds:
            return refuse(
                "stale_request",
                f"requested_at is {skew:.0f}s from the time Proctor received it "
                f"(window ±{self.window_seconds:.0f}s)",
                True,
            )
        return IdentityVerdict(
            verified=True,
            agent=agent,
            request_digest=request_digest,
            provable=True,
            public_keys=tuple(record.keys_valid_at(received_at)),
        )

    def _refuse(
        self,
        request: ActionRequest,
        request_digest: str,
        agent: AgentInfo | None,
        code: str,
        detail: str,
        provable: bool,
    ) -> IdentityVerdict:
        log.warning("identity refused for %s: %s", request.agent_id, code)
        charged = provable and agent is not None
        return IdentityVerdict(
            verified=False,
            agent=agent,
            refusal=code,
            detail=detail,
            request_digest=request_digest,
            provable=charged,
            trust=self.trust_policy(agent) if charged and agent is not None else None,
        )


def _all_keys(record: AgentRecord) -> list[str]:
    """Every key the agent has had that Proctor still knows: proof a request is its own."""
    return [pem for pem in (record.public_key_pem, record.previous_public_key_pem) if pem]
