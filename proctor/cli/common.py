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

from proctor.audit.keys import KeyFileError
from proctor.client import Client, GovernanceError
from proctor.db import DatabaseUnavailable, SchemaOutdated, connect_pool
from proctor.policy import PolicyError
from proctor.settings import NotConfigured, ProctorSettings, database_url, temporal_address
from proctor.signing import AgentKeyError
from proctor.stores.agents import AgentExists, UnknownAgent
from proctor.temporal import TemporalUnavailable

P = ParamSpec("P")
T = TypeVar("T")

# Errors whose message already says what went wrong, where, and how to fix it.
EXPECTED = (
    DatabaseUnavailable,
    SchemaOutdated,
    TemporalUnavailable,
    NotConfigured,
    PolicyError,
    AgentKeyError,
    AgentExists,
    UnknownAgent,
    GovernanceError,
    FileExistsError,
    ValueError,
    KeyFileError,
)


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run_async(command: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async click command, turning expected failures into one line and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(command(*args, **kwargs))
        except EXPECTED as exc:
            fail(str(exc))

    return wrapper


def settings() -> ProctorSettings:
    return ProctorSettings()


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
