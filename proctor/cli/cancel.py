"""`proctor cancel`: stop a governed action before it executes, the audited way.

Terminating a workflow in the Temporal UI also stops it, but the ledger then learns of it only
from the reconciler, as "terminated outside Proctor"; a cancel is decided by the workflow
itself, which records who cancelled and why, closes its Slack messages and ends `cancelled`.
Once the action is executing the workflow refuses (and audits the attempt).
"""

from __future__ import annotations

import click
from pydantic import ValidationError

from proctor.approvals.operations import (
    CANCEL_WAIT_SECONDS,
    NotCancellable,
    UnknownWorkflow,
    cancel_action,
)
from proctor.cli.common import database, fail, proctor_client, run_async
from proctor.models import CancelRequest


@click.command("cancel")
@click.argument("workflow_id")
@click.option("--by", "by", required=True, help="Your identity (kept in the audit log).")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=CANCEL_WAIT_SECONDS,
    show_default=True,
    help="Seconds to wait for the workflow to record its outcome.",
)
@run_async
async def cancel(workflow_id: str, by: str, reason: str, wait_seconds: float) -> None:
    """Cancel a governed action that has not started executing; prints how it ended."""
    request = _request(by, reason)
    proctor = await proctor_client()
    async with database() as pool:
        try:
            result = await cancel_action(
                proctor.temporal, pool, workflow_id, request, wait_seconds=wait_seconds
            )
        except (UnknownWorkflow, NotCancellable) as exc:
            fail(str(exc), code=1)
    state = result.state
    if result.cancelled:
        click.echo(f"{workflow_id}: {state.ending}")
    elif state.ending is not None:
        fail(f"{workflow_id} ended otherwise: {state.ending}", code=1)
    elif result.refused:
        fail(
            f"{workflow_id} is executing: the workflow refuses a cancel once the action runs "
            "(it records the attempt)",
            code=1,
        )
    else:
        fail(
            f"{workflow_id} has the cancel but had not recorded an outcome after "
            f"{wait_seconds:g}s (stage {state.stage or 'unknown'}); see `proctor approvals "
            "show`",
            code=1,
        )


def _request(by: str, reason: str) -> CancelRequest:
    """The signal's model, or one line naming the bad option."""
    try:
        return CancelRequest(by=by.strip(), reason=reason.strip())
    except ValidationError as exc:
        error = exc.errors()[0]
        option = f"--{error['loc'][0]}" if error["loc"] else "input"
        fail(f"{option}: {error['msg']}")
