"""`proctor audit …`: read and verify the hash chain (no Temporal needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from proctor.audit.anchor_state import load_anchor, save_anchor
from proctor.audit.chain import ChainRow, format_time
from proctor.audit.checkpoints import ChainBrokenError, Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys, key_id, load_public_pem
from proctor.audit.store import AuditLog
from proctor.audit.verify import LedgerReport, verify_ledger
from proctor.cli.common import database, fail, run_async, settings
from proctor.db import redact_dsn
from proctor.settings import audit_key_dir, checkpoint_sink_dir, database_url


@click.group("audit")
def audit_group() -> None:
    """Read and verify the audit log."""


@audit_group.command("verify")
@click.option("--full", is_flag=True,
              help="Check every row from the start, not from the last verified checkpoint.")
@click.option("--sink", "sink_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The external checkpoint directory (default: the configured sink).")
@click.option("--public-key", "public_keys", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A trusted checkpoint key (PEM); repeatable. Default: the sink's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@run_async
async def verify(full: bool, sink_dir: Path | None, public_keys: tuple[Path, ...],
                 as_json: bool) -> None:
    """Check every link and every signed checkpoint; exit 1 naming the first bad seq."""
    config = settings()
    sink = DirectorySink(sink_dir or checkpoint_sink_dir(config))
    keys = sink.public_keys()
    for pem in public_keys:
        public = load_public_pem(pem.read_text(), str(pem))
        keys[key_id(public)] = public
    where = redact_dsn(database_url(config))
    since = None if full else load_anchor(config.state_dir, where)
    async with database() as pool:
        report = await verify_ledger(AuditLog(pool), keys=keys, external=sink.read(),
                                     since=since)
    if report.verified_anchor is not None:
        save_anchor(config.state_dir, where, report.verified_anchor)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_report(report, sink)
    if not report.intact:
        sys.exit(1)


def _print_report(report: LedgerReport, sink: DirectorySink) -> None:
    scope = ("from the start" if report.mode == "full"
             else f"from the verified checkpoint at seq {report.start_seq - 1} (--full: all)")
    summary = (f"{report.rows_checked} rows checked {scope}, head seq {report.last_seq}; "
               f"{report.checkpoints_checked} signed checkpoints matched, "
               f"{report.external_checkpoints} in the external sink {sink.directory}")
    if report.intact:
        click.echo(f"audit ledger intact: {summary}")
        if not report.external_checkpoints:
            click.echo("note: no external checkpoints yet: a worker signs one every "
                       "PROCTOR_AUDIT_CHECKPOINT_ROWS rows or _SECONDS", err=True)
        return
    first = report.first_finding
    click.echo(f"audit ledger TAMPERED: first problem at {first}", err=True)
    for finding in report.findings:
        click.echo(f"  {finding}", err=True)
    click.echo(summary, err=True)


@audit_group.command("checkpoint")
@run_async
async def checkpoint() -> None:
    """Verify the rows since the last checkpoint and sign the head now (needs the keys)."""
    config = settings()
    keys = LedgerKeys.load_or_create(audit_key_dir(config))
    async with database() as pool:
        signer = Checkpointer(AuditLog(pool), keys, DirectorySink(checkpoint_sink_dir(config)),
                              every_rows=config.audit_checkpoint_rows)
        try:
            made = await signer.catch_up()
        except ChainBrokenError as exc:
            fail(str(exc), code=1)
    if not made:
        click.echo("nothing new to sign: the head is already checkpointed")
    for signed in made:
        body = signed.parsed()
        click.echo(f"signed checkpoint at seq {body.seq} ({body.hash[:16]}…) key {body.key_id}")


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
