"""`proctor up`, `proctor worker`, `proctor db migrate`: run Proctor's processes."""

from __future__ import annotations

import asyncio
import logging

import click

from proctor.cli.common import EXPECTED, database, fail, run_async, settings
from proctor.db import migrate


@click.command("up")
def up() -> None:
    """Run the whole stack in the foreground (embedded Temporal + Postgres + worker)."""
    from worker.stack import StackError
    from worker.stack import up as start_stack

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        start_stack(settings())
    except (StackError, *EXPECTED) as exc:
        fail(str(exc))


@click.command("worker")
def worker() -> None:
    """Run only the worker, against TEMPORAL_ADDRESS and PROCTOR_DATABASE_URL."""
    from worker.main import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(run_worker(settings()))
    except EXPECTED as exc:
        fail(str(exc))


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("migrate")
@run_async
async def migrate_command() -> None:
    """Apply pending schema migrations."""
    async with database() as pool:
        applied = await migrate(pool)
    click.echo(f"applied {', '.join(applied)}" if applied else "schema is up to date")
