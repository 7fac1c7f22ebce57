"""Casting a vote from a chat surface: check it here, let the workflow judge it again.

The approvals app refuses what it can see is wrong (unknown person, not an approver, the
requester, a stale button) before signalling, and audits the refusal. A vote it does send is
signed with the app's channel key (it authenticated the human itself, through Slack's signed
request) and judged once more by the workflow, whose verdict is the one that counts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.service import RPCError

from proctor.approvals.blocks import span
from proctor.approvals.keys import VoteSigner
from proctor.approvals.operator_client import OperatorClient
from proctor.client import Client
from proctor.metrics import VOTES
from proctor.models import AuditEvent, GrantScope, PendingApproval, RecordedVote
from proctor.stores.audit_log import AuditLog

JUDGEMENT_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class VoteResult:
    accepted: bool
    message: str
    """What to tell the person who voted."""
    pending: PendingApproval | None = None


class VoteDesk:
    def __init__(self, proctor: Client, audit: AuditLog, signer: VoteSigner) -> None:
        """`signer`: this approval service's channel key, trusted by the workers."""
        self.operator = OperatorClient(proctor)
        self.audit = audit
        self.signer = signer

    async def waiting(self, workflow_id: str) -> PendingApproval | str:
        """The pending approval, or why there is none to vote on."""
        try:
            progress = await self.operator.progress(workflow_id)
        except RPCError:
            return "this request no longer exists (or Proctor can't reach Temporal right now)"
        if progress.pending is None:
            status = progress.outcome.status.value if progress.outcome else progress.stage.value
            return f"this request is no longer waiting for approval ({status})"
        return progress.pending

    async def check(
        self,
        workflow_id: str,
        approver: str | None,
        digest: str,
        *,
        channel: str,
        interaction: str,
        approve: bool,
    ) -> VoteResult | None:
        """A refusal (audited) if this person may not vote on this request; None if they may."""
        pending = await self.waiting(workflow_id)
        if isinstance(pending, str):
            return VoteResult(False, pending)
        reason: str | None
        if approver is None:
            reason = "your Slack account is not linked to an approver identity"
        elif digest != pending.card.request_digest:
            reason = "the button is bound to a different request"
        else:
            reason = pending.refusal(approver)
        if reason is None:
            return None
        await self.audit.append(
            AuditEvent(
                idempotency_key=f"{workflow_id}:refused:{interaction}",
                event_type="vote_refused",
                workflow_id=workflow_id,
                agent_id=pending.card.agent_id,
                action=pending.card.action,
                actor=approver or "unknown",
                payload={
                    "approve": approve,
                    "reason": reason,
                    "channel": channel,
                    "request_digest": digest,
                },
            )
        )
        return VoteResult(False, f"refused: {reason}", pending)

    async def cast(
        self,
        workflow_id: str,
        approver: str | None,
        *,
        approve: bool,
        note: str | None,
        digest: str,
        channel: str,
        interaction: str,
        grant: GrantScope | None = None,
    ) -> VoteResult:
        """`grant`: the standing grant the approval also asks for (signed with it)."""
        result = await self._cast(
            workflow_id,
            approver,
            approve=approve,
            note=note,
            digest=digest,
            channel=channel,
            interaction=interaction,
            grant=grant,
        )
        VOTES.labels(verdict="accepted" if result.accepted else "refused").inc()
        return result

    async def _cast(
        self,
        workflow_id: str,
        approver: str | None,
        *,
        approve: bool,
        note: str | None,
        digest: str,
        channel: str,
        interaction: str,
        grant: GrantScope | None,
    ) -> VoteResult:
        refused = await self.check(
            workflow_id, approver, digest, channel=channel, interaction=interaction, approve=approve
        )
        if refused is not None:
            return refused
        assert approver is not None
        before = await self.operator.progress(workflow_id)
        await self.operator.decide(
            workflow_id,
            self.signer,
            approve=approve,
            note=note,
            approver=approver,
            request_digest=digest,
            grant=grant,
        )
        verdict = await self._verdict(workflow_id, len(before.votes), approver)
        if verdict is None:
            return VoteResult(True, "your vote was sent; the request has not judged it yet")
        if not verdict.accepted:
            return VoteResult(False, f"refused: {verdict.reason}")
        if not approve:
            return VoteResult(True, "you denied this request")
        if grant is None:
            return VoteResult(True, "you approved this request")
        return VoteResult(
            True,
            "you approved this request, and asked to approve this agent's similar requests "
            f"under rule {grant.rule_id} for {span(grant.duration_seconds)} (a standing "
            "grant, made when the round approves)",
        )

    async def _verdict(self, workflow_id: str, seen: int, approver: str) -> RecordedVote | None:
        loop = asyncio.get_running_loop()
        until = loop.time() + JUDGEMENT_WAIT_SECONDS
        while loop.time() < until:
            progress = await self.operator.progress(workflow_id)
            ours = [v for v in progress.votes[seen:] if v.vote.approver == approver]
            if ours:
                return ours[0]
            await asyncio.sleep(0.1)
        return None
