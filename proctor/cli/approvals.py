"""`proctor approvals list`, `proctor approve`, `proctor deny`: decide escalated actions."""

from __future__ import annotations

import asyncio

import click

from proctor.cli.common import fail, proctor_client, run_async
from proctor.client import Client
from proctor.models import RecordedVote


@click.group("approvals")
def approvals_group() -> None:
    """Actions waiting for a human."""


@approvals_group.command("list")
@run_async
async def list_pending() -> None:
    """Pending approvals (from Temporal visibility), soonest deadline first."""
    proctor = await proctor_client()
    pending = await proctor.pending_approvals()
    if not pending:
        click.echo("no actions are waiting for approval")
    for p in pending:
        click.echo(f"{p.workflow_id}\n  agent {p.agent_id} wants {p.action} {p.params}\n"
                   f"  rule {p.rule_id}: {p.reason}\n  approvers {', '.join(p.approvers)} "
                   f"(quorum {p.quorum}, approved by {', '.join(p.approvals) or 'nobody'})\n"
                   f"  deadline {p.deadline.isoformat()}")


async def vote(workflow_id: str, approver: str, approve: bool, note: str | None) -> None:
    proctor = await proctor_client()
    before = await proctor.progress(workflow_id)
    if before.pending is None:
        fail(f"{workflow_id} is not waiting for approval (stage {before.stage.value})")
    await proctor.decide(workflow_id, approver, approve=approve, note=note,
                         request_digest=before.pending.request_digest)
    recorded = await _judged(proctor, workflow_id, len(before.votes), approver)
    if recorded is None:
        click.echo(f"vote sent to {workflow_id}; the workflow has not judged it yet")
    elif recorded.accepted:
        click.echo(f"{'approved' if approve else 'denied'} {workflow_id} as {approver}")
    else:
        fail(f"the workflow refused the vote of {approver}: {recorded.reason}", code=1)


async def _judged(proctor: Client, workflow_id: str, seen: int,
                  approver: str) -> RecordedVote | None:
    """The workflow's verdict on our vote (it judges authorisation itself)."""
    for _ in range(100):
        state = await proctor.progress(workflow_id)
        ours = [v for v in state.votes[seen:] if v.vote.approver == approver]
        if ours:
            return ours[0]
        await asyncio.sleep(0.1)
    return None


@click.command("approve")
@click.argument("workflow_id")
@click.option("--as", "approver", required=True, help="Your approver identity (email).")
@click.option("--note", help="Optional note, kept in the audit log.")
@run_async
async def approve(workflow_id: str, approver: str, note: str | None) -> None:
    """Approve a waiting action."""
    await vote(workflow_id, approver, True, note)


@click.command("deny")
@click.argument("workflow_id")
@click.option("--as", "approver", required=True, help="Your approver identity (email).")
@click.option("--note", required=True, help="Why: shown to the agent and kept in the audit.")
@run_async
async def deny(workflow_id: str, approver: str, note: str) -> None:
    """Deny a waiting action."""
    await vote(workflow_id, approver, False, note)
