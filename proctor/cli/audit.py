"""`proctor audit …`: read and verify the hash chain (no Temporal needed)."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import click

from proctor.audit.anchor_state import load_anchor, save_anchor
from proctor.audit.chain import ChainRow, format_time
from proctor.audit.checkpoints import ChainBrokenError, Checkpointer, DirectorySink
from proctor.audit.erasure import SubjectKeys
from proctor.audit.keys import (
    KeyFileError,
    LedgerKeys,
    TrustedKeys,
    key_id,
    public_pem,
    trusted_keys,
    worker_public_key,
)
from proctor.audit.query import AuditFilter, query_audit
from proctor.audit.redaction import Revealer, marker_ending, subject_mention, value_hmac
from proctor.audit.report import Template, build_report, render_html, render_json, render_markdown
from proctor.audit.retention import Pruner, PruneRefused, place_hold, release_hold
from proctor.audit.subjects import subject_ref
from proctor.audit.verify import LedgerReport, verify_ledger
from proctor.canonical import canonical_text
from proctor.cli.common import database, fail, run_async, settings
from proctor.db import redact_dsn
from proctor.models import AuditEvent
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.settings import audit_key_dir, checkpoint_sink_dir, database_url
from proctor.stores.audit_checkpoints import has_signed_points
from proctor.stores.audit_log import AuditLog
from proctor.stores.audit_retention import active_holds, plan_prune
from proctor.stores.audit_search import containing_any, count_containing
from proctor.stores.connection import database_now


@click.group("audit")
def audit_group() -> None:
    """Read and verify the audit log."""


@audit_group.command("verify")
@click.option(
    "--full",
    is_flag=True,
    help="Re-hash every row from the start, not only those after the last verified checkpoint.",
)
@click.option(
    "--sink",
    "sink_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The external checkpoint directory (default: the configured sink).",
)
@click.option(
    "--trusted-key",
    "trusted",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A checkpoint key to trust (PEM); repeatable. Replaces the defaults "
    "(PROCTOR_AUDIT_TRUSTED_KEYS, else the worker's key in the key dir).",
)
@click.option(
    "--public-key",
    "deprecated",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deprecated name of --trusted-key.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@run_async
async def verify(
    full: bool,
    sink_dir: Path | None,
    trusted: tuple[Path, ...],
    deprecated: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Check every link and every signed checkpoint; exit 1 naming the first bad seq.

    Only pinned keys are trusted, never one found in the sink or the database. Without
    --full, rows up to the checkpoint an earlier run verified are not re-hashed (their signed
    points are re-checked), and the output says which."""
    config = settings()
    if deprecated:
        click.echo(
            "warning: --public-key is deprecated, use --trusted-key (either replaces the "
            "default keys; keys in the sink are never trusted)",
            err=True,
        )
    pinned = trusted_keys(
        audit_key_dir(config),
        config.audit_trusted_keys,
        (*trusted, *deprecated),
        option="--trusted-key" if trusted else "--public-key",
    )
    sink = DirectorySink(sink_dir or checkpoint_sink_dir(config))
    where = redact_dsn(database_url(config))
    since = load_anchor(config.state_dir, where, sink.directory)
    lines = sink.lines()
    async with database() as pool:
        if not pinned.keys and (lines or await has_signed_points(pool)):
            fail(
                f"no trusted checkpoint key: {pinned.source}; set PROCTOR_AUDIT_TRUSTED_KEYS "
                "or pass --trusted-key PEM (a key found in the sink or the database is never "
                "trusted)"
            )
        report = await verify_ledger(
            AuditLog(pool), keys=pinned.keys, external=lines, since=since, full=full
        )
    if report.verified_anchor is not None:
        save_anchor(config.state_dir, where, report.verified_anchor, sink.directory)
    if as_json:
        click.echo(
            json.dumps(
                {
                    **report.as_dict(),
                    "trusted_keys": sorted(pinned.keys),
                    "keys_from": pinned.source,
                },
                indent=2,
                default=str,
            )
        )
    else:
        _print_report(report, sink, pinned)
    if not report.intact:
        sys.exit(1)


def _print_report(report: LedgerReport, sink: DirectorySink, pinned: TrustedKeys) -> None:
    matched = (
        f"{report.checkpoints_checked} signed checkpoints matched, "
        f"{report.external_checkpoints} in the external sink {sink.directory}"
    )
    anchor = report.start_seq - 1
    if not report.intact:
        click.echo(f"audit ledger TAMPERED: first problem at {report.first_finding}", err=True)
        for finding in report.findings:
            click.echo(f"  {finding}", err=True)
        click.echo(
            f"{report.rows_checked} rows checked up to seq {report.last_seq}; {matched}; "
            f"keys: {pinned.source}",
            err=True,
        )
        return
    if report.mode == "full":
        origin = "from the start" if anchor == 0 else f"from the prune tombstone at seq {anchor}"
        click.echo(
            f"audit ledger intact: {report.rows_checked} rows checked {origin}, "
            f"head seq {report.last_seq}; {matched}"
        )
    elif report.rows_checked:
        click.echo(
            f"audit ledger intact from seq {report.start_seq}: {report.rows_checked} rows "
            f"checked from the verified checkpoint at seq {anchor}, head seq "
            f"{report.last_seq}; {matched}"
        )
    else:
        click.echo(
            f"audit ledger: 0 rows since the verified checkpoint at seq {anchor} (head "
            f"seq {report.last_seq}), nothing new to re-hash; {matched}"
        )
    if report.not_reread is not None:
        first, last = report.not_reread
        click.echo(
            f"not re-read: rows {first}..{last}, verified by an earlier run up to a signed "
            "checkpoint; this run re-checked only their signed points: use --full to "
            "re-hash them"
        )
    if report.unsigned_from is not None:
        click.echo(
            f"note: rows {report.unsigned_from}..{report.last_seq} are not covered by a "
            "signed checkpoint yet, only their links were checked (a worker signs every "
            "PROCTOR_AUDIT_CHECKPOINT_ROWS rows or _SECONDS seconds)"
        )
    click.echo(f"keys: {pinned.source}")


@audit_group.command("checkpoint")
@click.option(
    "--print-key",
    is_flag=True,
    help="Print the public key that verifies the checkpoints (PEM, to pin elsewhere "
    "with --trusted-key or PROCTOR_AUDIT_TRUSTED_KEYS); sign nothing.",
)
@run_async
async def checkpoint(print_key: bool) -> None:
    """Verify the rows since the last checkpoint and sign the head now (needs the keys)."""
    config = settings()
    if print_key:
        public = worker_public_key(audit_key_dir(config))
        if public is None:
            fail(
                f"{audit_key_dir(config)}: no checkpoint signing key here (set "
                "PROCTOR_AUDIT_KEY_DIR to the worker's key directory)"
            )
        click.echo(public_pem(public), nl=False)
        click.echo(f"key id {key_id(public)}", err=True)
        return
    keys = LedgerKeys.load_or_create(audit_key_dir(config))
    async with database() as pool:
        signer = Checkpointer(
            AuditLog(pool),
            keys,
            DirectorySink(checkpoint_sink_dir(config)),
            every_rows=config.audit_checkpoint_rows,
            every_seconds=config.audit_checkpoint_seconds,
        )
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
        rows = await (log.for_workflow(workflow_id) if workflow_id else log.latest(last))
    for row in rows:
        click.echo(render(row))


def render(row: ChainRow) -> str:
    return (
        f"{row.seq:>6}  {format_time(row.recorded_at)[:23]}  {row.event_type:18} "
        f"{row.actor or '-':24} {row.action or '-':20} {row.payload[:120]}"
    )


@audit_group.command("find-value")
@click.argument("value")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@run_async
async def find_value(value: str, limit: int) -> None:
    """Rows where VALUE was redacted (matched by its keyed HMAC; needs the ledger keys)."""
    keys = LedgerKeys.load(audit_key_dir(settings()))
    candidates = [value]
    if value.lstrip("-").isdigit():
        candidates.append(int(value))  # type: ignore[arg-type]
    endings = [marker_ending(value_hmac(keys.redaction_hmac, v)) for v in candidates]
    async with database() as pool:
        rows = await containing_any(pool, endings, limit)
    for row in rows:
        click.echo(render(row))
    click.echo(f"{len(rows)} row(s) hold a redacted copy of that value", err=True)


@audit_group.command("forget")
@click.argument("subject")
@click.option("--by", "actor", required=True, help="Who asked (recorded in the audit log).")
@run_async
async def forget(subject: str, actor: str) -> None:
    """Erase a data subject: destroy its key (GDPR art. 17); the chain still verifies."""
    keys = LedgerKeys.load(audit_key_dir(settings()))
    ref = subject_ref(keys.redaction_hmac, subject)
    async with database() as pool:
        destroyed = await SubjectKeys(pool, keys.subject_kek).forget(ref)
        rows = await count_containing(pool, subject_mention(ref))
        await AuditLog(pool).append(
            AuditEvent(
                idempotency_key=f"forget:{ref}:{uuid.uuid4().hex}",
                event_type="subject_forgotten",
                actor=actor,
                payload={"subject_ref": ref, "key_destroyed": destroyed, "rows_affected": rows},
            )
        )
    if destroyed:
        click.echo(
            f"subject {ref} forgotten: its key is destroyed; {rows} audit row(s) now read as erased"
        )
    else:
        click.echo(
            f"no key for subject {ref}: nothing of it was stored encrypted "
            f"({rows} row(s) reference it)"
        )


@audit_group.command("prune")
@click.option(
    "--retention-days",
    type=click.IntRange(1, 36500),
    help="Override the policy's audit.retention (default: the longest any policy "
    "sets, else 2555 days).",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@click.option("--by", "actor", required=True, help="Who prunes (recorded in the audit log).")
@run_async
async def prune(retention_days: int | None, dry_run: bool, actor: str) -> None:
    """Remove rows older than retention, up to a checkpoint, leaving a signed tombstone."""
    config = settings()
    days = (
        retention_days
        or PolicyEngine(load_policy_dir(config.policy_dir)).audit_rules.retention_days
    )
    async with database() as pool:
        before = await database_now(pool) - timedelta(days=days)
        if dry_run:
            plan = await plan_prune(pool, before)
        else:
            keys = LedgerKeys.load(audit_key_dir(config))
            try:
                plan = await Pruner(
                    AuditLog(pool), keys, DirectorySink(checkpoint_sink_dir(config))
                ).prune(before, actor)
            except PruneRefused as exc:
                fail(str(exc), code=1)
    if plan.upto_seq == 0:
        click.echo(f"nothing to prune: no checkpointed rows older than {days} days")
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {plan.rows} rows (seq {plan.previous_tombstone + 1}..{plan.upto_seq}, "
        f"older than {days} days)" + ("" if dry_run else "; signed tombstone written")
    )


@audit_group.group("hold")
def hold_group() -> None:
    """Legal holds: while any is active, nothing is pruned."""


@hold_group.command("place")
@click.option("--reason", required=True)
@click.option("--by", "actor", required=True)
@run_async
async def hold_place(reason: str, actor: str) -> None:
    async with database() as pool:
        hold_id = await place_hold(AuditLog(pool), reason, actor)
    click.echo(f"legal hold {hold_id} placed: pruning is blocked until it is released")


@hold_group.command("release")
@click.argument("hold_id", type=int)
@click.option("--by", "actor", required=True)
@run_async
async def hold_release(hold_id: int, actor: str) -> None:
    async with database() as pool:
        if not await release_hold(AuditLog(pool), hold_id, actor):
            fail(f"no active legal hold {hold_id}")
    click.echo(f"legal hold {hold_id} released")


@hold_group.command("list")
@run_async
async def hold_list() -> None:
    async with database() as pool:
        holds = await active_holds(pool)
    for hold in holds:
        click.echo(
            f"{hold.hold_id:>5}  {hold.placed_at:%Y-%m-%d}  {hold.placed_by:24} {hold.reason}"
        )
    if not holds:
        click.echo("no active legal holds")


@audit_group.command("query")
@click.option("--agent")
@click.option("--action", help="Exact name, or a prefix ending in * (refund*).")
@click.option("--effect", type=click.Choice(["allow", "deny", "escalate"]))
@click.option("--actor")
@click.option("--event-type")
@click.option("--workflow", "workflow_id")
@click.option("--since", type=click.DateTime(), help="UTC, inclusive.")
@click.option("--until", type=click.DateTime(), help="UTC, exclusive.")
@click.option("--after-seq", type=click.IntRange(0), default=0, help="Paging: continue after.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--reveal",
    is_flag=True,
    help="Decrypt erasable fields (needs the ledger keys; erased stay erased).",
)
@run_async
async def query(
    agent: str | None,
    action: str | None,
    effect: str | None,
    actor: str | None,
    event_type: str | None,
    workflow_id: str | None,
    since: datetime | None,
    until: datetime | None,
    after_seq: int,
    limit: int,
    output: str,
    reveal: bool,
) -> None:
    """Audit rows matching every filter, oldest first, a page at a time."""
    wanted = AuditFilter.model_validate(
        {
            "agent": agent,
            "action": action,
            "effect": effect,
            "actor": actor,
            "event_type": event_type,
            "workflow_id": workflow_id,
            "since": _utc(since),
            "until": _utc(until),
            "after_seq": after_seq,
            "limit": limit,
        }
    )
    async with database() as pool:
        revealer = None
        if reveal:
            keys = LedgerKeys.load(audit_key_dir(settings()))
            revealer = Revealer(SubjectKeys(pool, keys.subject_kek))
        page = await query_audit(pool, wanted, revealer)
    if output == "json":
        click.echo(page.model_dump_json(indent=2))
        return
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(
            [
                "seq",
                "recorded_at",
                "event_type",
                "workflow_id",
                "agent_id",
                "action",
                "actor",
                "payload",
                "hash",
            ]
        )
        for e in page.entries:
            writer.writerow(
                [
                    e.seq,
                    e.recorded_at,
                    e.event_type,
                    e.workflow_id,
                    e.agent_id,
                    e.action,
                    e.actor,
                    canonical_text(e.payload),
                    e.hash,
                ]
            )
    else:
        for e in page.entries:
            click.echo(
                f"{e.seq:>6}  {e.recorded_at[:23]}  {e.event_type:18} "
                f"{e.actor or '-':24} {e.action or '-':20} "
                f"{canonical_text(e.payload)[:120]}"
            )
    if page.next_after_seq is not None:
        click.echo(f"more: --after-seq {page.next_after_seq}", err=True)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


@audit_group.command("report")
@click.option("--from", "start", type=click.DateTime(), required=True, help="UTC, inclusive.")
@click.option("--to", "end", type=click.DateTime(), required=True, help="UTC, exclusive.")
@click.option("--template", type=click.Choice(["soc2", "gdpr", "hipaa"]), required=True)
@click.option(
    "--format", "output", type=click.Choice(["md", "json", "html"]), default="md", show_default=True
)
@run_async
async def report(start: datetime, end: datetime, template: str, output: str) -> None:
    """Totals, approvals, violations, trust and ledger integrity, mapped to the controls."""
    config = settings()
    sink = DirectorySink(checkpoint_sink_dir(config))
    try:  # keys pinned outside the sink and the database, as `audit verify` trusts them
        pinned = trusted_keys(audit_key_dir(config), config.audit_trusted_keys).keys
    except KeyFileError as exc:
        fail(str(exc))
    async with database() as pool:
        integrity = await verify_ledger(AuditLog(pool), keys=pinned, external=sink.lines())
        built = await build_report(
            pool,
            cast(Template, template),
            start.replace(tzinfo=UTC),
            end.replace(tzinfo=UTC),
            integrity,
        )
    renderers = {"md": render_markdown, "json": render_json, "html": render_html}
    click.echo(renderers[output](built))
