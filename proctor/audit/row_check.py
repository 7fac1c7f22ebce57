"""Whether a handful of audit rows (one workflow's) verify, without walking the whole ledger.

Each row is checked three ways: its hash recomputes from its content, it links to the row
before it, and a signed checkpoint after it still holds its content digest (the external
witness that a consistently rewritten chain cannot fake). `proctor audit verify` remains the
check of the whole ledger; this one answers "can I trust what this timeline shows?".
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proctor.audit.chain import GENESIS_HASH, ChainRow, content_digest, row_hash
from proctor.audit.signed import CheckpointBody
from proctor.models import Frozen
from proctor.stores.audit_checkpoints import database_checkpoints
from proctor.stores.audit_log import AuditLog


class RowCheck(Frozen):
    seq: int
    hash_ok: bool
    linked: bool
    checkpoint_seq: int | None = None
    """The signed checkpoint that covers the row (none yet: the row is newer than the last)."""
    witnessed: bool | None = None
    """The checkpoint's digest of the row matches it (None: no checkpoint covers it yet)."""
    signature_ok: bool | None = None
    """The checkpoint's signature verifies with a pinned key (None: no key was pinned; False:
    it does not, or its signer is not among the pinned keys)."""

    @property
    def verified(self) -> bool:
        return (
            self.hash_ok
            and self.linked
            and self.witnessed is not False
            and self.signature_ok is not False
        )

    def describe(self) -> str:
        if not self.hash_ok:
            return "TAMPERED: its hash does not match its content"
        if not self.linked:
            return "BROKEN LINK: the row before it is missing or changed"
        if self.checkpoint_seq is None:
            return "verified (hash, link); newer than the last signed checkpoint"
        if not self.witnessed:
            return f"REWRITTEN: differs from signed checkpoint #{self.checkpoint_seq}"
        if self.signature_ok is False:
            return f"checkpoint #{self.checkpoint_seq} has a BAD SIGNATURE"
        signed = (
            "signature valid"
            if self.signature_ok
            else "signature not checked: no trusted key pinned"
        )
        return f"verified (hash, link, checkpoint #{self.checkpoint_seq}, {signed})"


def _witness(body: CheckpointBody, seq: int) -> str | None:
    digests = body.witness_digests()
    index = seq - body.previous_seq - 1
    return digests[index] if 0 <= index < len(digests) else None


async def check_rows(
    audit: AuditLog,
    rows: Sequence[ChainRow],
    public_keys: dict[str, Ed25519PublicKey] | None = None,
) -> list[RowCheck]:
    """One check per row, in the rows' order. `public_keys`: pinned keys (never the sink's or
    the database's); a checkpoint signed by any other key is as good as forged."""
    anchors = [(signed, signed.parsed()) for _, signed in await database_checkpoints(audit.pool)]
    bodies = [(signed, body) for signed, body in anchors if body.kind == "checkpoint"]
    tombstones = {body.seq: body.hash for _, body in anchors if body.kind == "tombstone"}
    checks = []
    for row in rows:
        before = await audit.row_at(row.seq - 1) if row.seq > 1 else None
        if before is not None:
            linked = row.prev_hash == before.hash
        elif row.seq == 1:
            linked = row.prev_hash == GENESIS_HASH
        else:  # the rows before were pruned: the tombstone carries the last hash
            linked = tombstones.get(row.seq - 1) == row.prev_hash
        cover = next(((s, b) for s, b in bodies if b.previous_seq < row.seq <= b.seq), None)
        check = RowCheck(seq=row.seq, hash_ok=row_hash(row) == row.hash, linked=linked)
        if cover is not None:
            checkpoint, body = cover
            check = check.model_copy(
                update={
                    "checkpoint_seq": body.seq,
                    "witnessed": _witness(body, row.seq) == content_digest(row),
                    "signature_ok": (
                        checkpoint.signature_valid(public_keys) if public_keys else None
                    ),
                }
            )
        checks.append(check)
    return checks
