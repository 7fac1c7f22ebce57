"""Signed checkpoints of the chain head, kept in Postgres and in a sink outside it.

A hash chain alone can be recomputed by anyone who can write the table; a checkpoint signed
with a key the database never sees cannot. Each checkpoint also carries a short content digest
of every row since the previous one (the witness), so a consistently rewritten chain can be
compared row by row and the first bad row named.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from proctor.audit.chain import GENESIS_HASH, WITNESS_CHARS, ChainVerifier, content_digest
from proctor.audit.keys import KeyFileError, LedgerKeys, key_id, load_public_pem, public_pem
from proctor.audit.store import AuditLog, Connection
from proctor.canonical import canonical_text
from proctor.metrics import CHAIN_INTACT, CHAIN_VERIFIED_AT, CHAIN_VERIFIED_SEQ

log = logging.getLogger("proctor.audit.checkpoints")
CHECKPOINT_LOCK_ID = 0x61756469745F63  # "audit_c": one checkpointer at a time
SINK_FILE = "checkpoints.jsonl"
SINK_KEYS = "keys"


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

    def witness_digests(self) -> list[str]:
        return [self.witness[i:i + WITNESS_CHARS]
                for i in range(0, len(self.witness), WITNESS_CHARS)]


class SignedCheckpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    body: str
    signature: str

    def parsed(self) -> CheckpointBody:
        return CheckpointBody.model_validate_json(self.body)

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


def sign(keys: LedgerKeys, body: CheckpointBody) -> SignedCheckpoint:
    text = canonical_text(body.model_dump())
    return SignedCheckpoint(body=text,
                            signature=base64.b64encode(keys.signing.sign(text.encode())).decode())


class DirectorySink:
    """An append-only JSON-lines file (plus the public keys) in a directory outside Postgres.

    Lines are appended with O_APPEND and fsynced before the checkpoint's database row commits;
    the directory should live on storage the database administrator cannot rewrite.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        return self.directory / SINK_FILE

    def publish_key(self, public: Ed25519PublicKey) -> None:
        keys = self.directory / SINK_KEYS
        keys.mkdir(parents=True, exist_ok=True)
        target = keys / f"{key_id(public)}.pem"
        if not target.exists():
            target.write_text(public_pem(public))

    def write(self, signed: SignedCheckpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(signed.model_dump(), separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[SignedCheckpoint]:
        """Every line; a line that doesn't parse is itself evidence, so it raises."""
        if not self.path.exists():
            return []
        found = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                found.append(SignedCheckpoint.model_validate_json(line))
            except ValidationError as exc:
                raise SinkCorrupt(f"{self.path}:{number}: not a signed checkpoint") from exc
        return found

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        keys: dict[str, Ed25519PublicKey] = {}
        for pem in sorted((self.directory / SINK_KEYS).glob("*.pem")):
            public = load_public_pem(pem.read_text(), str(pem))
            keys[key_id(public)] = public
        return keys


class SinkCorrupt(KeyFileError):
    """The external checkpoint file has a line that is not a signed checkpoint."""


class ChainBrokenError(RuntimeError):
    """The rows since the last checkpoint do not verify: refusing to sign them."""


async def latest_anchor(pool: asyncpg.Pool) -> tuple[int, str, datetime | None]:
    """The newest signed point (checkpoint or tombstone): seq, hash, when it was made."""
    record = await pool.fetchrow(
        "SELECT seq, hash, created_at FROM ("
        " SELECT seq, hash, created_at FROM audit_checkpoints"
        " UNION ALL SELECT upto_seq, hash, created_at FROM audit_tombstones"
        ") anchors ORDER BY seq DESC LIMIT 1")
    if record is None:
        return 0, GENESIS_HASH, None
    return record["seq"], record["hash"], record["created_at"]


class Checkpointer:
    """Signs the chain head every `every_rows` rows or `every_seconds` (whichever first)."""

    def __init__(self, audit: AuditLog, keys: LedgerKeys, sink: DirectorySink, *,
                 every_rows: int = 1000, every_seconds: float = 60.0) -> None:
        self.audit = audit
        self.keys = keys
        self.sink = sink
        self.every_rows = every_rows
        self.every_seconds = every_seconds

    async def due(self) -> bool:
        seq, _, made_at = await latest_anchor(self.audit.pool)
        head, _ = await self.audit.head()
        if head <= seq:
            return False
        if head - seq >= self.every_rows or made_at is None:
            return True
        age = await self.audit.pool.fetchval("SELECT extract(epoch FROM now() - $1::timestamptz)",
                                             made_at)
        return float(age) >= self.every_seconds

    async def checkpoint(self) -> SignedCheckpoint | None:
        """Verify the rows since the last anchor, then sign the head; None if nothing new."""
        async with self.audit.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", CHECKPOINT_LOCK_ID):
                return None  # another worker is signing right now
            try:
                return await self._checkpoint_locked(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", CHECKPOINT_LOCK_ID)

    async def _checkpoint_locked(self, conn: Connection) -> SignedCheckpoint | None:
        previous_seq, previous_hash, _ = await latest_anchor(self.audit.pool)
        head, _ = await self.audit.head()
        if head <= previous_seq:
            return None
        # Never more than the cadence in one checkpoint: witnesses stay small and bounded.
        upto = min(head, previous_seq + max(self.every_rows, 1))
        verifier = ChainVerifier(previous_seq + 1, previous_hash)
        digests: list[str] = []
        async for row in self.audit.rows(previous_seq + 1, upto):
            if not verifier.feed(row):
                break
            digests.append(content_digest(row))
        report = verifier.report()
        if report.first_break is not None or report.last_seq != upto:
            problem = report.first_break or f"rows up to {upto} not readable"
            log.error("audit chain broken, not signing a checkpoint: %s", problem)
            raise ChainBrokenError(f"audit chain broken at {problem}: not signing")
        now = await conn.fetchval("SELECT now()")
        signed = sign(self.keys, CheckpointBody(
            kind="checkpoint", seq=upto, hash=report.head_hash, previous_seq=previous_seq,
            previous_hash=previous_hash, witness="".join(digests),
            signed_at=now.isoformat(), key_id=self.keys.key_id))
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO audit_checkpoints (seq, hash, key_id, body, signature)"
                " VALUES ($1, $2, $3, $4, $5)",
                upto, report.head_hash, self.keys.key_id, signed.body, signed.signature)
            # The outside copy before COMMIT: a failed write rolls the database row back.
            self.sink.publish_key(self.keys.signing.public_key())
            self.sink.write(signed)
        CHAIN_INTACT.set(1)
        CHAIN_VERIFIED_SEQ.set(upto)
        CHAIN_VERIFIED_AT.set(time.time())
        return signed

    async def run(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        """Until `stop`: checkpoint whenever due; a broken chain is logged, never signed."""
        while not stop.is_set():
            try:
                if await self.due():
                    await self.catch_up()
            except ChainBrokenError:
                CHAIN_INTACT.set(0)  # logged where found; keep alerting on every pass
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("checkpoint not written this time: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)

    async def catch_up(self) -> list[SignedCheckpoint]:
        """Checkpoint until the head is covered (used at shutdown and by the CLI)."""
        made = []
        while (signed := await self.checkpoint()) is not None:
            made.append(signed)
        return made


async def database_checkpoints(pool: asyncpg.Pool) -> list[tuple[str, SignedCheckpoint]]:
    """(table, signed) for every checkpoint and tombstone row, in seq order."""
    records = await pool.fetch(
        "SELECT 'audit_checkpoints' AS source, seq, body, signature FROM audit_checkpoints"
        " UNION ALL SELECT 'audit_tombstones', upto_seq, body, signature FROM audit_tombstones"
        " ORDER BY seq")
    return [(r["source"], SignedCheckpoint(body=r["body"], signature=r["signature"]))
            for r in records]

