"""What a store runs its statements on, and the one clock every worker shares."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, bare or checked out of a pool: what a statement inside a transaction runs on."""
Queryable = asyncpg.Pool | Connection
"""Anything one statement can run on: a pool, or a connection (inside its transaction)."""


async def database_now(db: Queryable) -> datetime:
    """Postgres' clock (the transaction's start, on a connection inside one): the time every
    worker agrees on, so what one signs or cuts off another reads the same way."""
    moment: datetime = await db.fetchval("SELECT now()")
    return moment
