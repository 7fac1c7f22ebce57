"""Per-subject data keys: personal fields are encrypted under them; forgetting destroys one.

Keys are wrapped (RFC 3394 AES key wrap) with the worker's key-encryption key, so a database
dump alone reveals nothing; `forget` deletes the wrapped key and rewrites the table so no copy
of it stays in the table's files. The audit rows keep their ciphertext, so the chain verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import asyncpg
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

DATA_KEY_BYTES = 64  # AES-SIV with AES-256


def subject_ref(hmac_key: bytes, subject: str) -> str:
    """The subject's pseudonymous name in the ledger: an HMAC, never the id itself."""
    return hmac.new(hmac_key, b"subject\x00" + subject.encode(), hashlib.sha256).hexdigest()[:32]


class SubjectKeys:
    def __init__(self, pool: asyncpg.Pool, kek: bytes) -> None:
        self.pool = pool
        self.kek = kek

    async def key_for(self, ref: str) -> bytes:
        """The subject's data key, created on first use (concurrent creators agree)."""
        wrapped = await self.pool.fetchval(
            "INSERT INTO audit_subject_keys (subject_ref, wrapped_key) VALUES ($1, $2)"
            " ON CONFLICT (subject_ref) DO NOTHING RETURNING wrapped_key",
            ref,
            aes_key_wrap(self.kek, secrets.token_bytes(DATA_KEY_BYTES)),
        )
        if wrapped is None:
            wrapped = await self.pool.fetchval(
                "SELECT wrapped_key FROM audit_subject_keys WHERE subject_ref = $1", ref
            )
        return aes_key_unwrap(self.kek, bytes(wrapped))

    async def existing(self, ref: str) -> bytes | None:
        wrapped = await self.pool.fetchval(
            "SELECT wrapped_key FROM audit_subject_keys WHERE subject_ref = $1", ref
        )
        return None if wrapped is None else aes_key_unwrap(self.kek, bytes(wrapped))

    async def forget(self, ref: str) -> bool:
        """Destroy the subject's key; True if there was one. Needs the proctor_admin role."""
        removed = await self.pool.fetchval(
            "DELETE FROM audit_subject_keys WHERE subject_ref = $1 RETURNING true", ref
        )
        # Rewrite the (small) table so the deleted tuple's bytes leave its data files.
        await self.pool.execute("VACUUM FULL audit_subject_keys")
        return bool(removed)
