"""Signed checkpoints of the chain head, kept in Postgres and in a sink outside it.

A hash chain alone can be recomputed by anyone who can write the table; a checkpoint signed
with a key the database never sees cannot. Each checkpoint also carries a short content digest
of every row since the previous one (the witness), so a consistently rewritten chain can be
compared row by row and the first bad row named.

Cadence: a checkpoint covers at most `every_rows` rows, and no row waits longer than
`every_seconds` to be covered. Full chunks are signed as soon as they exist; the rows after the
last full chunk only once the oldest of them is `every_seconds` old, so a burst is signed once
per `every_rows`, not once per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg

from proctor.audit.chain import ChainVerifier, content_digest
from proctor.audit.keys import LedgerKeys
from proctor.audit.signed import CheckpointBody, SignedCheckpoint, sign
from proctor.audit.sink import SINK_FILE, SINK_KEYS, DirectorySink, SinkCorrupt, parse_line
from proctor.errors import IntegrityError
from proctor.metrics import CHAIN_INTACT, CHAIN_VERIFIED_AT, CHAIN_VERIFIED_SEQ
from proctor.stores.audit_checkpoints import insert_signed_point, latest_anchor, signing_turn
from proctor.stores.audit_log import AuditLog
from proctor.stores.connection import Connection, database_now

__all__ = [
    "SINK_FILE",
    "SINK_KEYS",
    "ChainBrokenError",
    "CheckpointBody",
    "Checkpointer",
    "DirectorySink",
    "SignedCheckpoint",
    "SinkCorrupt",
    "sign",
]

log = logging.getLogger(__name__)


class ChainBrokenError(IntegrityError):
    """The rows since the last checkpoint do not verify: refusing to sign them."""


class Checkpointer:
    """Signs the chain head at the cadence above; one signer at a time across workers."""

    def __init__(
        self,
        audit: AuditLog,
        keys: LedgerKeys,
        sink: DirectorySink,
        *,
        every_rows: int = 1000,
        every_seconds: float = 60.0,
    ) -> None:
        self.audit = audit
        self.keys = keys
        self.sink = sink
        self.every_rows = max(every_rows, 1)
        self.every_seconds = every_seconds

    async def due(self) -> bool:
        """Whether `sign_due` would sign something now."""
        seq, _, _ = await latest_anchor(self.audit.pool)
        head, _ = await self.audit.head()
        return head - seq >= self.every_rows or (head > seq and await self._tail_is_old(seq))

    async def _tail_is_old(self, signed_seq: int) -> bool:
        """The oldest row no checkpoint covers has waited `every_seconds` (by Postgres' clock,
        the one clock every worker shares)."""
        age = await self.audit.seconds_waiting_after(signed_seq)
        return age is not None and age >= self.every_seconds

    async def checkpoint(self, *, partial: bool = True) -> SignedCheckpoint | None:
        """Verify the rows since the last signed point and sign up to `every_rows` of them;
        None if nothing to sign (`partial=False`: nothing unless a full chunk is there)."""
        async with self.audit.pool.acquire() as conn, signing_turn(conn) as ours:
            if not ours:
                return None  # another worker is signing right now
            return await self._checkpoint_locked(conn, partial)

    async def _checkpoint_locked(self, conn: Connection, partial: bool) -> SignedCheckpoint | None:
        previous_seq, previous_hash, _ = await latest_anchor(self.audit.pool)
        if (recovered := await self._reconcile(conn, previous_seq)) is not None:
            return recovered
        head, _ = await self.audit.head()
        upto = min(head, previous_seq + self.every_rows)
        if upto <= previous_seq or (not partial and upto - previous_seq < self.every_rows):
            return None
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
        now = await database_now(conn)
        signed = sign(
            self.keys,
            CheckpointBody(
                kind="checkpoint",
                seq=upto,
                hash=report.head_hash,
                previous_seq=previous_seq,
                previous_hash=previous_hash,
                witness="".join(digests),
                signed_at=now.isoformat(),
                key_id=self.keys.key_id,
                previous_line=self.sink.previous_line(),
            ),
        )
        async with conn.transaction():
            await insert_signed_point(conn, signed)
            # The outside copy before COMMIT: a failed write rolls the database row back.
            self.sink.write(signed)
        CHAIN_INTACT.set(1)
        CHAIN_VERIFIED_SEQ.set(upto)
        CHAIN_VERIFIED_AT.set(time.time())
        return signed

    async def _reconcile(self, conn: Connection, previous_seq: int) -> SignedCheckpoint | None:
        """The sink's last line, if it is ours, must not be ahead of the database.

        One checkpoint ahead whose rows still hold is a database row lost between the fsync
        and the commit: it is put back, rather than the same rows signed twice, differently.
        Anything else ahead means the database lost its checkpoints; signing from its older
        anchor would vouch for whatever the rows now say, so this refuses.
        """
        last = self.sink.last_line()
        signed = None if last is None else parse_line(last)
        if signed is None or not signed.signature_valid(self.keys.pinned):
            return None
        body = signed.parsed()
        if body.seq <= previous_seq:
            return None
        stored = await self.audit.hash_at(body.seq)
        if body.kind != "checkpoint" or body.previous_seq != previous_seq or stored != body.hash:
            log.error(
                "the sink's last %s (seq %d) is past the database's newest signed point "
                "(seq %d): not signing",
                body.kind,
                body.seq,
                previous_seq,
            )
            raise ChainBrokenError(
                f"the sink holds a signed {body.kind} at seq {body.seq} past the database's "
                f"newest signed point (seq {previous_seq}): the database lost checkpoints; "
                "not signing until `proctor audit verify --full` is clean"
            )
        async with conn.transaction():
            await insert_signed_point(conn, signed)
        log.warning(
            "restored the checkpoint at seq %d from the sink (its database row was lost)", body.seq
        )
        return signed

    async def sign_due(self) -> list[SignedCheckpoint]:
        """Every full chunk of `every_rows`, then the rest if its oldest row is old enough."""
        made: list[SignedCheckpoint] = []
        while True:
            seq, _, _ = await latest_anchor(self.audit.pool)
            signed = await self.checkpoint(partial=await self._tail_is_old(seq))
            if signed is None:
                return made
            made.append(signed)

    async def run(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        """Until `stop`, and once more when it comes (a clean shutdown leaves no due head
        unsigned): sign what is due; a broken chain is logged, never signed."""
        while True:
            try:
                await self.sign_due()
            except ChainBrokenError:
                CHAIN_INTACT.set(0)  # logged where found; keep alerting on every pass
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("checkpoint not written this time: %s", exc)
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)

    async def catch_up(self) -> list[SignedCheckpoint]:
        """Checkpoint until the head is covered, whatever the cadence (the CLI, shutdown)."""
        made = []
        while (signed := await self.checkpoint()) is not None:
            made.append(signed)
        return made
