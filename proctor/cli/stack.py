"""`proctor up`, `proctor worker`, `proctor db migrate`: run Proctor's processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import click

from proctor.cli.common import database, fail, run_async, settings
from proctor.cli.server_side import configure_logging, run_approvals_app, run_stack, run_worker
from proctor.db import APP_ROLE, ensure_login_role, migrate
from proctor.errors import ProctorError
from proctor.settings import ProctorSettings


@click.command("up")
def up() -> None:
    """Run the whole stack in the foreground (embedded Temporal + Postgres + worker)."""
    config = settings()
    configure_logging(config)
    if "log_level" not in config.model_fields_set:  # the console is for the stack's banner
        logging.getLogger().setLevel(logging.WARNING)
    try:
        run_stack(config)
    except ProctorError as exc:
        fail(str(exc))


@click.command("worker")
def worker() -> None:
    """Run only the worker, against TEMPORAL_ADDRESS and PROCTOR_DATABASE_URL."""
    _run(run_worker)


@click.command("approvals-app")
def approvals_app() -> None:
    """Run only the Slack approvals app (HTTP on PROCTOR_APPROVALS_PORT, or Socket Mode with
    PROCTOR_SLACK_APP_TOKEN); `proctor up` and `proctor worker` run it too when Slack is set."""
    _run(run_approvals_app)


def _run(process: Callable[[ProctorSettings], Coroutine[Any, Any, None]]) -> None:
    """A long-running process in the foreground: logs to stderr, one-line errors."""
    config = settings()
    configure_logging(config)
    try:
        asyncio.run(process(config))
    except ProctorError as exc:
        fail(str(exc))


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("migrate")
@click.option(
    "--app-login",
    "app_logins",
    multiple=True,
    metavar="ROLE",
    help="Make this login role a member of proctor_app (append and read only): "
    "the role workers connect as. Repeatable.",
)
@run_async
async def migrate_command(app_logins: tuple[str, ...]) -> None:
    """Apply pending schema migrations (run as the database owner)."""
    async with database() as pool:
        applied = await migrate(pool)
        for role in app_logins:
            await ensure_login_role(pool, role, APP_ROLE)
    click.echo(f"applied {', '.join(applied)}" if applied else "schema is up to date")
    for role in app_logins:
        click.echo(f"{role} may append to and read the ledger, never rewrite or prune it")
