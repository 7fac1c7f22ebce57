"""`proctor audit …`: read and verify the hash chain (no Temporal needed)."""

from __future__ import annotations

import sys

import click

from proctor.audit.chain import ChainRow, format_time
from proctor.audit.store import AuditLog
from proctor.cli.common import database, run_async


@click.group("audit")
def audit_group() -> None:
    """Read and verify the audit log."""


@audit_group.command("verify")
@run_async
async def verify() -> None:
    """Check every link of the chain; exit 1 naming the first bad seq."""
    async with database() as pool:
        report = await AuditLog(pool).verify()
    if report.first_break is not None:
        click.echo(f"audit chain BROKEN at {report.first_break} "
                   f"({report.rows_checked} rows verified before it)", err=True)
        sys.exit(1)
    click.echo(f"audit chain intact: {report.rows_checked} rows, head seq {report.last_seq} "
               f"hash {report.head_hash[:16]}…")


@audit_group.command("show")
@click.option("--workflow", "workflow_id", help="Only rows of this workflow id.")
@click.option("--last", type=click.IntRange(1, 100_000), default=20, show_default=True)
@run_async
async def show(workflow_id: str | None, last: int) -> None:
    """Print audit rows, oldest first."""
    async with database() as pool:
        log = AuditLog(pool)
        if workflow_id:
            rows = await log.for_workflow(workflow_id)
        else:
            head = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit_log")
            rows = [r async for r in log.rows(start_seq=max(1, head - last + 1))]
    for row in rows:
        click.echo(render(row))


def render(row: ChainRow) -> str:
    return (f"{row.seq:>6}  {format_time(row.recorded_at)[:23]}  {row.event_type:18} "
            f"{row.actor or '-':24} {row.action or '-':20} {row.payload[:120]}")
