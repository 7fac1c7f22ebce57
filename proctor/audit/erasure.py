"""Per-subject data keys: personal fields are encrypted under them; forgetting destroys one.

Keys are wrapped (RFC 3394 AES key wrap) with the worker's key-encryption key, so a database
dump alone reveals nothing; `forget` deletes the wrapped key and rewrites the table so no copy
of it stays in the table's files. The audit rows keep their ciphertext, so the chain verifies.
"""

from __future__ import annotations

import secrets

import asyncpg
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from proctor.stores.audit_subject_keys import SubjectKeyStore

DATA_KEY_BYTES = 64  # AES-SIV with AES-256


class SubjectKeys:
    """Subjects' data keys, wrapped with `kek` before they reach the database (the
    `SubjectKeySource` redaction encrypts with)."""

    def __init__(self, pool: asyncpg.Pool, kek: bytes) -> None:
        self.stored = SubjectKeyStore(pool)
        self.kek = kek

    async def key_for(self, ref: str) -> bytes:
        """The subject's data key, created on first use (concurrent creators agree)."""
        fresh = aes_key_wrap(self.kek, secrets.token_bytes(DATA_KEY_BYTES))
        return aes_key_unwrap(self.kek, await self.stored.add_or_get(ref, fresh))

    async def existing(self, ref: str) -> bytes | None:
        wrapped = await self.stored.get(ref)
        return None if wrapped is None else aes_key_unwrap(self.kek, wrapped)

    async def forget(self, ref: str) -> bool:
        """Destroy the subject's key; True if there was one. Needs the proctor_admin role."""
        return await self.stored.destroy(ref)
