"""Wrapped per-subject data keys in Postgres: created once, read, destroyed for good.

The store sees only wrapped keys (`proctor.audit.erasure` wraps and unwraps them), so a dump of
this table reveals nothing without the worker's key-encryption key.
"""

from __future__ import annotations

import asyncpg


class SubjectKeyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add_or_get(self, ref: str, wrapped: bytes) -> bytes:
        """Store `wrapped` as the subject's key unless it has one; the key it has now
        (concurrent creators agree on the first one written)."""
        stored = await self.pool.fetchval(
            "INSERT INTO audit_subject_keys (subject_ref, wrapped_key) VALUES ($1, $2)"
            " ON CONFLICT (subject_ref) DO NOTHING RETURNING wrapped_key",
            ref,
            wrapped,
        )
        if stored is None:
            stored = await self.get(ref)
        return bytes(stored)

    async def get(self, ref: str) -> bytes | None:
        wrapped = await self.pool.fetchval(
            "SELECT wrapped_key FROM audit_subject_keys WHERE subject_ref = $1", ref
        )
        return None if wrapped is None else bytes(wrapped)

    async def destroy(self, ref: str) -> bool:
        """Delete the subject's key; True if there was one. Needs the proctor_admin role."""
        removed = await self.pool.fetchval(
            "DELETE FROM audit_subject_keys WHERE subject_ref = $1 RETURNING true", ref
        )
        # Rewrite the (small) table so the deleted tuple's bytes leave its data files.
        await self.pool.execute("VACUUM FULL audit_subject_keys")
        return bool(removed)
