"""Signed points on real Postgres: one signer at a time, the newest anchor, both tables read."""

from __future__ import annotations

from proctor.audit.chain import GENESIS_HASH
from proctor.audit.keys import LedgerKeys
from proctor.audit.signed import CheckpointBody, SignedCheckpoint, sign
from proctor.stores.audit_checkpoints import (
    checkpoint_hash,
    database_checkpoints,
    has_signed_points,
    insert_signed_point,
    latest_anchor,
    signing_turn,
    tombstone_hash,
)
from proctor.stores.audit_log import AuditLog

KEYS = LedgerKeys.generate()


def signed_point(kind: str, seq: int, digest: str) -> SignedCheckpoint:
    return sign(
        KEYS,
        CheckpointBody.model_validate(
            {
                "kind": kind,
                "seq": seq,
                "hash": digest,
                "previous_seq": 0,
                "previous_hash": GENESIS_HASH,
                "signed_at": "2026-01-01T00:00:00+00:00",
                "key_id": KEYS.key_id,
            }
        ),
    )


async def test_one_signer_at_a_time(audit: AuditLog) -> None:
    async with audit.pool.acquire() as first, audit.pool.acquire() as second:
        async with signing_turn(first) as ours:
            assert ours
            async with signing_turn(second) as theirs:
                assert not theirs
        async with signing_turn(second) as theirs:
            assert theirs


async def test_points_of_both_tables_are_read_back_in_seq_order(audit: AuditLog) -> None:
    assert not await has_signed_points(audit.pool)
    assert await latest_anchor(audit.pool) == (0, GENESIS_HASH, None)

    tombstone, checkpoint = (
        signed_point("tombstone", 5, "a" * 64),
        signed_point("checkpoint", 9, "b" * 64),
    )
    async with audit.pool.acquire() as conn:
        await insert_signed_point(conn, checkpoint)
        await insert_signed_point(conn, tombstone)

    assert await has_signed_points(audit.pool)
    seq, digest, made = await latest_anchor(audit.pool)
    assert (seq, digest) == (9, "b" * 64) and made is not None
    assert await checkpoint_hash(audit.pool, 9) == "b" * 64
    assert await checkpoint_hash(audit.pool, 5) is None
    assert await tombstone_hash(audit.pool, 5) == "a" * 64
    assert await database_checkpoints(audit.pool) == [
        ("audit_tombstones", tombstone),
        ("audit_checkpoints", checkpoint),
    ]
