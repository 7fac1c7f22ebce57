"""What every command shares: settings, connections, and one clear line per failure."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, ParamSpec, TypeVar

import asyncpg
import click

from proctor.client import Client
from proctor.db import connect_pool
from proctor.errors import ProctorError
from proctor.settings import ProctorSettings, database_url, load_settings, temporal_address

P = ParamSpec("P")
T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run_async(command: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async click command: a `ProctorError` is one line and exit 2, a bug a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(command(*args, **kwargs))
        except ProctorError as exc:
            fail(str(exc))

    return wrapper


def settings() -> ProctorSettings:
    return load_settings()


@asynccontextmanager
async def database() -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url(settings()), max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def proctor_client() -> Client:
    config = settings()
    return await Client.connect(
        temporal_address(config), namespace=config.temporal_namespace, task_queue=config.task_queue
    )
