"""Identity of a request: is it really from a registered, active agent, fresh, and unused?

Refusals say whether they are *provable*: only a request carrying a valid signature of one of
the agent's keys can be the agent's doing (a stale timestamp, a nonce reused for a different
request, a retired key). Forged, unsigned and byte-identical copies of a genuine request are
somebody else's doing, and never cost the named agent trust.

A delegation chain is judged last, once the request is proven the agent's own: a chain that
does not hold (a link forged, widened, expired, too deep) is refused as `bad_delegation`, the
requester's doing (it signed the chain into its request), never a delegator's. So is an
execution service the request names that is not registered (`unknown_executor`) or not active
(`inactive_executor`): the verdict of a request naming one carries the service's keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from proctor.canonical import digest
from proctor.delegation import chain_refusal, chain_view
from proctor.models import (
    ActionRequest,
    AgentInfo,
    AgentStatus,
    DelegationLink,
    IdentityVerdict,
    TrustPolicy,
)
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
        approver_keys: Callable[[str], tuple[str, ...]] = lambda _: (),
        max_delegation_depth: int = 3,
    ) -> None:
        """`trust_policy` gives the settings a provable refusal is charged by;
        `approver_keys` a human's public keys (the trusted vote key directory), which sign the
        root link of a chain a human starts."""
        self.agents = agents
        self.nonces = nonces
        self.window_seconds = window_seconds
        self.trust_policy = trust_policy
        self.approver_keys = approver_keys
        self.max_delegation_depth = max_delegation_depth

    async def judge(
        self, request: ActionRequest, *, workflow_id: str, run_id: str, received_at: datetime
    ) -> IdentityVerdict:
        """Judged at receipt (`received_at`: when the server started the workflow), so a retry
        after an outage never turns a fresh request stale or an old key invalid.

        The order matters: nothing is held against the agent before its signature is proven,
        and the nonce is claimed before anything else, so a copy of a genuine request is
        judged as a copy whatever else is wrong with it now."""
        request_digest = digest(request.signing_payload())
        wrong_workflow = _wrong_workflow(request, workflow_id)
        if wrong_workflow is not None:
            return self._refuse(request, request_digest, None, wrong_workflow)
        record = await self.agents.get(request.agent_id)
        if record is None:
            return self._refuse(request, request_digest, None, _unregistered(request))
        valid_now = _signed_by(request, record, received_at)
        if isinstance(valid_now, Refusal):
            return self._refuse(request, request_digest, record.info, valid_now)
        claim = await self.nonces.claim(
            request.agent_id,
            request.nonce,
            request.request_id,
            run_id=run_id,
            request_digest=request_digest,
        )
        refusal = _copied(claim) or _out_of_standing(
            request, record.info, valid_now, received_at, self.window_seconds
        )
        if refusal is None:
            refusal = await self._delegation_refusal(request, received_at)
        executor_keys: tuple[str, ...] = ()
        if refusal is None and request.execution.executor is not None:
            executor = await self._executor_keys(request.execution.executor, received_at)
            if isinstance(executor, Refusal):
                refusal = executor
            else:
                executor_keys = executor
        if refusal is not None:
            return self._refuse(request, request_digest, record.info, refusal)
        return IdentityVerdict(
            verified=True,
            agent=record.info,
            request_digest=request_digest,
            provable=True,
            public_keys=tuple(record.keys_valid_at(received_at)),
            delegation=chain_view(request) if request.delegation else None,
            executor_keys=executor_keys,
        )

    async def _executor_keys(
        self, executor_id: str, received_at: datetime
    ) -> tuple[str, ...] | Refusal:
        """The keys of the execution service the agent named, as of receipt. Fail closed: a
        service unknown or not active executes nothing. The agent signed the name, so the
        refusal is its own doing."""
        record = await self.agents.get(executor_id)
        if record is None:
            return Refusal(
                "unknown_executor",
                f"execution service {executor_id!r} is not registered",
                provable=True,
            )
        if record.info.status is not AgentStatus.ACTIVE:
            return Refusal(
                "inactive_executor",
                f"execution service {executor_id!r} is {record.info.status.value}",
                provable=True,
            )
        return tuple(record.keys_valid_at(received_at))

    async def _delegation_refusal(
        self, request: ActionRequest, received_at: datetime
    ) -> Refusal | None:
        """The chain against the delegators' keys as of receipt: an agent's from the store
        (none once it is no longer active), a human's from the trusted vote key directory."""
        agent_keys: dict[str, tuple[str, ...]] = {}
        for link in request.delegation:
            if link.delegator_kind == "agent" and link.delegator not in agent_keys:
                delegator = await self.agents.get(link.delegator)
                active = delegator is not None and delegator.info.status is AgentStatus.ACTIVE
                agent_keys[link.delegator] = (
                    tuple(delegator.keys_valid_at(received_at)) if active and delegator else ()
                )

        def keys_of(link: DelegationLink) -> tuple[str, ...]:
            if link.delegator_kind == "agent":
                return agent_keys.get(link.delegator, ())
            return self.approver_keys(link.delegator)

        detail = chain_refusal(
            request,
            keys_of=keys_of,
            max_depth=self.max_delegation_depth,
            at=received_at,
            clock_skew=timedelta(seconds=self.window_seconds),
        )
        return None if detail is None else Refusal("bad_delegation", detail, provable=True)

    def _refuse(
        self,
        request: ActionRequest,
        request_digest: str,
        agent: AgentInfo | None,
        refusal: Refusal,
    ) -> IdentityVerdict:
        log.warning("identity refused for %s: %s", request.agent_id, refusal.code)
        charged = refusal.provable and agent is not None
        return IdentityVerdict(
            verified=False,
            agent=agent,
            refusal=refusal.code,
            detail=refusal.detail,
            request_digest=request_digest,
            provable=charged,
            trust=self.trust_policy(agent) if charged and agent is not None else None,
        )


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, and whether the agent provably did it (then it costs trust)."""

    code: str
    detail: str
    provable: bool


def _wrong_workflow(request: ActionRequest, workflow_id: str) -> Refusal | None:
    if workflow_id == request.workflow_id:
        return None
    return Refusal(
        "wrong_workflow_id",
        f"the request belongs to workflow {request.workflow_id!r}, not {workflow_id!r}",
        provable=False,
    )


def _unregistered(request: ActionRequest) -> Refusal:
    return Refusal("unknown_agent", f"agent {request.agent_id!r} is not registered", provable=False)


def _signed_by(request: ActionRequest, record: AgentRecord, at: datetime) -> bool | Refusal:
    """Whether a key valid at `at` signed it (True) or only a retired one did (False)."""
    if not request.signature:
        return Refusal("missing_signature", "the request carries no signature", provable=False)
    try:
        valid_now = any(verify_request(request, pem) for pem in record.keys_valid_at(at))
        signed = valid_now or any(verify_request(request, pem) for pem in _all_keys(record))
    except AgentKeyError as exc:
        return Refusal("unusable_key", str(exc), provable=False)
    if not signed:
        return Refusal(
            "bad_signature",
            "the signature does not match the request and any key of this agent",
            provable=False,
        )
    return valid_now


def _copied(claim: NonceClaim) -> Refusal | None:
    if claim is NonceClaim.COPIED:
        return Refusal(
            "replayed_request",
            "this exact signed request already ran: a copy runs nothing",
            provable=False,
        )
    if claim is NonceClaim.REUSED:
        return Refusal(
            "replayed_nonce", "this nonce was already used by another request", provable=True
        )
    return None


def _out_of_standing(
    request: ActionRequest,
    agent: AgentInfo,
    valid_now: bool,
    received_at: datetime,
    window_seconds: float,
) -> Refusal | None:
    """What a genuinely signed, first-seen request can still be refused for: the agent's own
    doing, so provable."""
    if not valid_now:
        return Refusal(
            "retired_key",
            "signed with a key of this agent whose grace period had ended",
            provable=True,
        )
    if agent.status is not AgentStatus.ACTIVE:
        return Refusal(
            f"{agent.status.value}_agent",
            f"agent {request.agent_id!r} is {agent.status.value}",
            provable=True,
        )
    skew = abs((received_at - request.requested_at).total_seconds())
    if skew > window_seconds:
        return Refusal(
            "stale_request",
            f"requested_at is {skew:.0f}s from the time Proctor received it "
            f"(window ±{window_seconds:.0f}s)",
            provable=True,
        )
    return None


def _all_keys(record: AgentRecord) -> list[str]:
    """Every key the agent has had that Proctor still knows: proof a request is its own."""
    return [pem for pem in (record.public_key_pem, record.previous_public_key_pem) if pem]
