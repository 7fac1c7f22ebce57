"""Postgres connections and schema migrations (numbered .sql files shipped with the package)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from proctor.errors import InputError, UnavailableError

MIGRATION_LOCK_ID = 0x70726F63746F72  # "proctor": one migrator at a time across processes


class DatabaseUnavailable(UnavailableError):
    """Postgres could not be reached; the message says where and how to fix it."""


class SchemaOutdated(UnavailableError):
    """The database lacks migrations this code needs."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("proctor.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def connect_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, command_timeout=60
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to Postgres at {redact_dsn(dsn)}: {exc}. Start it with "
            "`proctor up`, or set PROCTOR_DATABASE_URL to a reachable database."
        ) from exc
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INT PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                applied.append(migration.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database `name` on the server of `admin_dsn` unless it exists."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def check_schema(pool: asyncpg.Pool) -> None:
    """Refuse to serve on a database that misses migrations (run `proctor db migrate`)."""
    async with pool.acquire() as conn:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        done = (
            {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            if exists
            else set()
        )
    missing = [m.name for m in migrations() if m.version not in done]
    if missing:
        raise SchemaOutdated(
            f"the database misses migrations {', '.join(missing)}: run `proctor db migrate`"
        )


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and error messages."""
    dsn = _PASSWORD_PARAM.sub(r"\1***", dsn)
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else dsn


_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


APP_ROLE = "proctor_app"
"""Appends and reads the ledger; can neither rewrite nor prune it (created by migrations)."""
ADMIN_ROLE = "proctor_admin"
"""The app's rights plus legal holds, erasure of subject keys and pruning."""


async def ensure_login_role(pool: asyncpg.Pool, name: str, member_of: str = APP_ROLE) -> None:
    """Create a passwordless login role in `member_of` unless it exists (local stacks, tests)."""
    if not name.replace("_", "").isalnum():
        raise InputError(f"{name!r} is not a plain role name")
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            with contextlib.suppress(asyncpg.DuplicateObjectError):
                await conn.execute(f'CREATE ROLE "{name}" LOGIN')
        await conn.execute(f'GRANT "{member_of}" TO "{name}"')


def with_user(dsn: str, user: str) -> str:
    """The URL DSN with its user replaced (and any password dropped)."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        raise InputError("expected a URL DSN like postgresql://user@host/db")
    _, at, location = rest.rpartition("@")
    return f"{scheme}://{user}@{location if at else rest}"


def with_database(dsn: str, name: str) -> str:
    """The URL DSN with its database replaced (query string, e.g. a socket host, kept)."""
    base, sep, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}{sep}{query}"
