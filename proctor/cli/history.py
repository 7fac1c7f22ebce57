"""`proctor history` and `proctor replay`: what happened to one action, and whether today's
code still reproduces it.

Both read history encrypted by the payload codec with this process's key ring: `history show`
decrypts a copy of the events to tell them, `replay` hands the ring's converter to the
Replayer. `history export` writes the events as Temporal stores them, encrypted: the file may
be kept or committed without carrying what the agents sent, and replays where the ring is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click
from google.protobuf import json_format
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from proctor.audit.chain import ChainRow, format_time
from proctor.audit.keys import KeyFileError, trusted_keys
from proctor.audit.row_check import RowCheck, check_rows
from proctor.cli.common import database, fail, proctor_client, run_async, settings
from proctor.cli.server_side import replay_all
from proctor.history.payloads import decode_history
from proctor.history.timeline import CLOSED_AS, TimelineStep, name_audit_steps, timeline
from proctor.settings import audit_key_dir
from proctor.stores.audit_log import AuditLog
from proctor.temporal import data_converter


class _ShowByDefault(click.Group):
    """`proctor history ID` means `proctor history show ID`; subcommands still win."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group("history", cls=_ShowByDefault)
def history_group() -> None:
    """One governed action's Temporal history: `proctor history WORKFLOW_ID` tells it."""


async def fetch_history(
    workflow_id: str, run_id: str | None = None, *, decrypt: bool = False
) -> WorkflowHistory:
    """The recorded events; `decrypt`: with every payload decoded by this process's ring."""
    proctor = await proctor_client()
    handle = proctor.temporal.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        history = await handle.fetch_history()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            fail(
                f"{workflow_id}: no such workflow in namespace {proctor.temporal.namespace} "
                "(closed workflows stay only for the namespace's retention period; an "
                "exported history can still be read with `proctor replay --file`)"
            )
        fail(f"{workflow_id}: {exc.message}")
    if not decrypt:
        return history
    return await decode_history(history, proctor.temporal.data_converter.payload_codec)


def _status(history: WorkflowHistory) -> str:
    """How the run closed, from its last event (RUNNING while it has not)."""
    if not history.events:
        return "EMPTY"
    return CLOSED_AS.get(history.events[-1].event_type, "RUNNING")


async def _audit_rows(workflow_id: str) -> tuple[list[ChainRow], list[RowCheck]]:
    config = settings()
    try:  # only keys pinned outside the sink and the database vouch for a row
        keys = trusted_keys(audit_key_dir(config), config.audit_trusted_keys).keys
    except KeyFileError:
        keys = {}
    async with database() as pool:
        audit = AuditLog(pool)
        rows = await audit.for_workflow(workflow_id)
        return rows, await check_rows(audit, rows, keys)


@history_group.command("show")
@click.argument("workflow_id")
@click.option("--run-id", help="A run other than the latest.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_async
async def show(workflow_id: str, run_id: str | None, as_json: bool) -> None:
    """The timeline of one governed action, with its audit rows and whether they verify.

    Exit 1 if any of its audit rows does not verify."""
    history = await fetch_history(workflow_id, run_id, decrypt=True)
    rows, checks = await _audit_rows(workflow_id)
    steps = name_audit_steps(timeline(history), {r.seq: r.event_type for r in rows})
    if as_json:
        click.echo(
            json.dumps(
                {
                    "workflow_id": workflow_id,
                    "status": _status(history),
                    "timeline": [s.model_dump(mode="json") for s in steps],
                    "audit": [
                        {
                            "seq": r.seq,
                            "event_type": r.event_type,
                            "actor": r.actor,
                            "recorded_at": format_time(r.recorded_at),
                            "payload": json.loads(r.payload),
                            "hash": r.hash,
                            "verified": c.verified,
                            "check": c.describe(),
                        }
                        for r, c in zip(rows, checks, strict=True)
                    ],
                },
                indent=2,
            )
        )
    else:
        _print(workflow_id, history, steps, rows, checks)
    if not all(c.verified for c in checks):
        sys.exit(1)


def _print(
    workflow_id: str,
    history: WorkflowHistory,
    steps: list[TimelineStep],
    rows: list[ChainRow],
    checks: list[RowCheck],
) -> None:
    by_seq = dict(zip((r.seq for r in rows), checks, strict=True))
    click.echo(f"{workflow_id}: {_status(history)} ({len(history.events)} history events)")
    for step in steps:
        line = f"  {format_time(step.at)}  [{step.event_id:>3}] {step.text}"
        if step.audit_seq is not None:
            check = by_seq.get(step.audit_seq)
            line += (
                "  (row not found in the audit log!)"
                if check is None
                else f"  [{'ok' if check.verified else 'FAILS'}]"
            )
        click.echo(line)
    click.echo(
        f"audit rows ({len(rows)}, "
        + (
            "all verify"
            if all(c.verified for c in checks)
            else f"{sum(not c.verified for c in checks)} DO NOT VERIFY"
        )
        + "):"
    )
    for row, check in zip(rows, checks, strict=True):
        click.echo(
            f"  #{row.seq} {format_time(row.recorded_at)} {row.event_type:<22} "
            f"{row.actor or '-':<22} {check.describe()}"
        )


@history_group.command("export")
@click.argument("workflow_id")
@click.option("--run-id", help="A run other than the latest.")
@run_async
async def export(workflow_id: str, run_id: str | None) -> None:
    """The raw history as JSON on stdout (the format `proctor replay --file` reads):
    `proctor history export ID > NAME.json`.

    Payloads stay encrypted as Temporal stores them: no secret lands in the file, and it
    replays only where the payload key ring is (`proctor replay --file`). The clear fixtures
    CI replays without keys (tests/histories) are recorded from synthetic runs instead
    (`python -m tests.histories.record`)."""
    history = await fetch_history(workflow_id, run_id)
    click.echo(history.to_json())


@click.command("replay")
@click.argument("workflow_id", required=False)
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An exported history (repeatable).",
)
@click.option("--query", help="A visibility query, e.g. 'ExecutionStatus=\"Running\"'.")
@click.option("--json", "as_json", is_flag=True, help="One JSON report per line.")
@run_async
async def replay(
    workflow_id: str | None, files: tuple[Path, ...], query: str | None, as_json: bool
) -> None:
    """Replay histories against this code with Temporal's Replayer; exit 1 if any diverges.

    Run it before deploying a workflow change, over the running workflows
    (`--query 'ExecutionStatus="Running"'`), to prove they can continue on the new code."""
    if sum((workflow_id is not None, bool(files), query is not None)) != 1:
        fail("give exactly one of WORKFLOW_ID, --file (repeatable) or --query")
    failures = total = 0
    try:
        converter = data_converter(settings())
        async for report in replay_all(await _histories(workflow_id, files, query), converter):
            total += 1
            failures += not report.deterministic
            if as_json:
                click.echo(report.model_dump_json())
            elif report.deterministic:
                click.echo(f"ok     {report.workflow_id}")
            else:
                click.echo(
                    f"FAILED {report.workflow_id}: {report.error}"
                    + (f"\n       diverges at {report.event}" if report.event else "")
                )
    except RPCError as exc:
        fail(f"listing {query!r}: {exc.message}" if query else exc.message)
    if not as_json:
        click.echo(f"{total} replayed, {failures} non-deterministic")
    if total == 0 and not as_json:
        click.echo("(nothing matched)")
    if failures:
        sys.exit(1)


async def _histories(
    workflow_id: str | None, files: tuple[Path, ...], query: str | None
) -> list[WorkflowHistory] | AsyncIterator[WorkflowHistory]:
    if files:
        histories = []
        for path in files:
            try:
                history = WorkflowHistory.from_json(path.stem, path.read_text())
            except (ValueError, KeyError, json_format.ParseError) as exc:
                fail(f"{path}: not an exported workflow history ({exc})")
            if not history.events or history.events[0].event_type != (
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            ):
                fail(
                    f"{path}: not an exported workflow history (it must begin with the "
                    "workflow's start event; export one with `proctor history export`)"
                )
            histories.append(history)
        return histories
    if workflow_id is not None:
        return [await fetch_history(workflow_id)]
    proctor = await proctor_client()
    return proctor.temporal.list_workflows(query).map_histories()
