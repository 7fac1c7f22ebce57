"""`proctor approvals list` and `show`: what waits for a human, and how each request went."""

from __future__ import annotations

import json

import click

from proctor.approvals.operations import UnknownWorkflow, progress_of, run_state
from proctor.approvals.operator_client import OperatorClient
from proctor.audit.chain import format_time
from proctor.cli.common import database, fail, proctor_client, run_async, settings
from proctor.cli.display import Redactor, names_only, params_redactor
from proctor.models import ApprovalCard, PendingApproval, RecordedVote
from proctor.policy.schema import format_duration


@click.group("approvals")
def approvals_group() -> None:
    """Actions waiting for a human."""


@approvals_group.command("list")
@click.option("--agent", help="Only this agent's requests.")
@click.option("--action", help="Only requests for this action.")
@run_async
async def list_pending(agent: str | None, action: str | None) -> None:
    """Pending approvals (from Temporal visibility), soonest deadline first; parameters
    redacted with the policy's audit rules."""
    operator = OperatorClient(await proctor_client())
    pending, silent = await operator.pending_approvals_report(agent=agent, action=action)
    redact = params_redactor(settings()) if pending else names_only
    if not pending and not silent:
        click.echo("no actions are waiting for approval")
    for workflow_id in silent:
        click.echo(
            f"{workflow_id}\n  waiting, but no worker answers for it right now "
            "(is the Proctor worker running?)"
        )
    for p in pending:
        click.echo(
            f"{p.card.workflow_id}\n{_request_lines(p.card, redact)}\n"
            f"  approvers {', '.join(p.card.approvers)} "
            f"(quorum {p.card.quorum}, approved by {', '.join(p.approvals) or 'nobody'})\n"
            f"  deadline {p.card.deadline.isoformat()}"
        )


@approvals_group.command("show")
@click.argument("workflow_id")
@run_async
async def show(workflow_id: str) -> None:
    """The whole story of one request: where it stands or how it ended, every vote, and each
    audited step (escalation, notifications, reminders, ladder, votes, outcome)."""
    redact = params_redactor(settings())
    proctor = await proctor_client()
    async with database() as pool:
        try:
            state = await run_state(proctor.temporal, pool, workflow_id)
        except UnknownWorkflow as exc:
            fail(str(exc), code=1)
    progress = await progress_of(proctor.temporal, workflow_id)
    if state.ending is not None:
        click.echo(f"{workflow_id}: closed\n  ended: {state.ending}")
    elif progress is None:
        click.echo(
            f"{workflow_id}: {state.stage or 'running'} (no worker answers for it right "
            "now: is the Proctor worker running?)"
        )
    else:
        click.echo(f"{workflow_id}: {progress.stage.value}")
        _show_pending(progress.pending, redact)
    if progress is not None:
        _show_votes(progress.votes)
    click.echo("audit:")
    for row in state.rows:
        click.echo(
            f"  #{row.seq} {format_time(row.recorded_at)}  {row.event_type:<22} "
            f"{row.actor or '-':<24} {_summary(row.payload)}"
        )


def _request_lines(card: ApprovalCard, redact: Redactor) -> str:
    """Who wants what, and the rule that asks for a human: the same in `list` and `show`."""
    return (
        f"  agent {card.agent_id} wants {card.action} {redact(card.params)}\n"
        f"  rule {card.rule_id}: {card.reason}"
    )


def _show_pending(pending: PendingApproval | None, redact: Redactor) -> None:
    if pending is None:
        return
    card = pending.card
    click.echo(
        f"{_request_lines(card, redact)}\n"
        f"  approvers {', '.join(card.approvers)} (quorum {card.quorum})\n"
        f"  approved by {', '.join(pending.approvals) or 'nobody'}"
        + (f", denied by {', '.join(pending.denials)}" if pending.denials else "")
        + f"\n  deadline {card.deadline.isoformat()}"
    )
    if card.delegation_chain:
        click.echo(f"  on behalf of {' → '.join(card.delegation_chain)} (none of them may approve)")
    if card.grant_max_seconds is not None:
        click.echo(
            f"  grants: up to {format_duration(card.grant_max_seconds)} (approve --grant DURATION)"
        )


def _show_votes(votes: tuple[RecordedVote, ...]) -> None:
    click.echo("votes:" if votes else "votes: none yet")
    for recorded in votes:
        vote = recorded.vote
        click.echo(
            f"  {recorded.at.isoformat()}  {vote.approver} "
            f"{'approve' if vote.approve else 'deny'} via {vote.channel}: "
            f"{'accepted' if recorded.accepted else 'REFUSED'} ({recorded.reason})"
            + (f" - {vote.note}" if vote.note else "")
        )


def _summary(payload_text: str, limit: int = 160) -> str:
    payload = json.loads(payload_text)
    keys = (
        "status",
        "approve",
        "accepted",
        "reason",
        "detail",
        "note",
        "approvers",
        "added",
        "pending_approvers",
        "undelivered",
        "error",
        "deadline",
        "step",
        "grant_id",
        "expires_at",
    )
    text = ", ".join(f"{k}={payload[k]}" for k in keys if payload.get(k) not in (None, [], ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"
