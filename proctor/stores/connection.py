"""What a store runs its statements on: a pool, or one connection (bare or from a pool)."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, bare or checked out of a pool: what a statement inside a transaction runs on."""
