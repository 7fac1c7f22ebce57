"""What a checkpoint or tombstone says, and its signature: the same text in Postgres and the sink.

Everything that must not be changed without the key is inside the signed body, including the
link to the sink line before it, so the sink's order is as hard to forge as its content.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from proctor.audit.chain import WITNESS_CHARS
from proctor.audit.keys import LedgerKeys
from proctor.canonical import canonical_text

SINK_GENESIS = "0" * 64
"""What the first line of a sink follows."""


class CheckpointBody(BaseModel):
    """What is signed. `kind` tells a checkpoint from a prune tombstone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["checkpoint", "tombstone"]
    seq: int
    hash: str
    previous_seq: int
    previous_hash: str
    witness: str = ""
    """Concatenated content digests of rows previous_seq+1..seq (checkpoints only)."""
    rows_removed: int = 0
    """Tombstones: how many rows the prune removed."""
    signed_at: str
    key_id: str
    previous_line: str | None = None
    """SHA-256 of the sink line written just before this one (SINK_GENESIS for the first).
    None only in what was signed before sink lines were chained."""

    def witness_digests(self) -> list[str]:
        return [
            self.witness[i : i + WITNESS_CHARS] for i in range(0, len(self.witness), WITNESS_CHARS)
        ]


class SignedCheckpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    body: str
    signature: str

    def parsed(self) -> CheckpointBody:
        return CheckpointBody.model_validate_json(self.body)

    def line(self) -> bytes:
        """The sink line, as written (no newline)."""
        return json.dumps(self.model_dump(), separators=(",", ":")).encode()

    def signature_valid(self, keys: dict[str, Ed25519PublicKey]) -> bool:
        try:
            body = self.parsed()
        except ValidationError:
            return False
        public = keys.get(body.key_id)
        if public is None:
            return False
        try:
            public.verify(base64.b64decode(self.signature), self.body.encode())
        except (InvalidSignature, ValueError):
            return False
        return True


def line_digest(raw: bytes) -> str:
    """What the next sink line's `previous_line` must say about this one."""
    return hashlib.sha256(raw).hexdigest()


def sign(keys: LedgerKeys, body: CheckpointBody) -> SignedCheckpoint:
    text = canonical_text(body.model_dump(exclude_none=True))
    return SignedCheckpoint(
        body=text, signature=base64.b64encode(keys.signing.sign(text.encode())).decode()
    )
