"""Wrapped subject keys on real Postgres: one key per subject however many create it."""

from __future__ import annotations

import asyncio

from proctor.stores.audit_log import AuditLog
from proctor.stores.audit_subject_keys import SubjectKeyStore


async def test_concurrent_creators_agree_and_destroying_is_final(audit: AuditLog) -> None:
    store = SubjectKeyStore(audit.pool)
    assert await store.get("ref") is None

    kept = await asyncio.gather(*(store.add_or_get("ref", bytes([n]) * 40) for n in range(8)))

    assert len(set(kept)) == 1 and await store.get("ref") == kept[0]
    assert await store.add_or_get("ref", b"\xff" * 40) == kept[0]
    assert await store.destroy("ref")
    assert await store.get("ref") is None
    assert not await store.destroy("ref")
