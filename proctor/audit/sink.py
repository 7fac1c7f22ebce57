"""The checkpoint sink: an append-only JSON-lines file in a directory outside Postgres.

Whoever can write the directory is not trusted: each line's signed body carries the digest of
the line before it, so a deleted, inserted or reordered line shows, and the database's copy of
every checkpoint shows a truncated or emptied file. No key is published here: a key found
next to the data it vouches for vouches for nothing.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from proctor.audit.keys import KeyFileError, key_id, load_public_pem
from proctor.audit.signed import SINK_GENESIS, SignedCheckpoint, line_digest

SINK_FILE = "checkpoints.jsonl"
SINK_KEYS = "keys"
_TAIL_BLOCK = 1 << 16


class SinkCorrupt(KeyFileError):
    """The external checkpoint file has a line that is not a signed checkpoint."""


@dataclass(frozen=True)
class SinkLine:
    number: int
    """1-based, in file order."""
    raw: bytes
    """The line without its newline: what the next line's link is computed over."""
    signed: SignedCheckpoint | None
    """None: the line is not a signed checkpoint at all."""

    @property
    def digest(self) -> str:
        return line_digest(self.raw)

    @classmethod
    def of(cls, number: int, signed: SignedCheckpoint) -> SinkLine:
        return cls(number, signed.line(), signed)


def parse_line(raw: bytes) -> SignedCheckpoint | None:
    try:
        return SignedCheckpoint.model_validate_json(raw)
    except ValidationError:
        return None


class DirectorySink:
    """Lines are appended with O_APPEND and fsynced before the checkpoint's database row
    commits; the directory should live on storage the database administrator cannot rewrite.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        return self.directory / SINK_FILE

    def write(self, signed: SignedCheckpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = signed.line() + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a torn last line stays a line of its own (and is found)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def last_line(self) -> bytes | None:
        """The last line (without newline), reading only the end of the file."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return None
        with handle:
            end = handle.seek(0, os.SEEK_END)
            if end == 0:
                return None
            handle.seek(end - 1)
            stop = end - 1 if handle.read(1) == b"\n" else end
            data, start = b"", stop
            while start > 0:
                start = max(0, start - _TAIL_BLOCK)
                handle.seek(start)
                data = handle.read(stop - start)
                cut = data.rfind(b"\n")
                if cut >= 0:
                    return data[cut + 1 :]
            return data

    def previous_line(self) -> str:
        """What the next line written here must link to."""
        last = self.last_line()
        return SINK_GENESIS if last is None else line_digest(last)

    def lines(self) -> list[SinkLine]:
        """Every line as found, whether or not it is a signed checkpoint (missing: none)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        if not data:
            return []
        raws = data.split(b"\n")
        if data.endswith(b"\n"):
            raws.pop()
        return [SinkLine(number, raw, parse_line(raw)) for number, raw in enumerate(raws, start=1)]

    def read(self) -> list[SignedCheckpoint]:
        """Every line as a signed checkpoint; a line that isn't one raises (see `lines`)."""
        found = []
        for line in self.lines():
            if line.signed is None:
                raise SinkCorrupt(f"{self.path}:{line.number}: not a signed checkpoint")
            found.append(line.signed)
        return found

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Deprecated, and never trustworthy: keys an older Proctor left in `keys/`.

        Anyone who can write the sink can put a key here. Verify with keys pinned outside it
        (`proctor.audit.keys.trusted_keys`); new sinks hold none.
        """
        warnings.warn(
            "DirectorySink.public_keys() returns untrusted keys from the sink; "
            "pin keys with proctor.audit.keys.trusted_keys",
            DeprecationWarning,
            stacklevel=2,
        )
        keys: dict[str, Ed25519PublicKey] = {}
        for pem in sorted((self.directory / SINK_KEYS).glob("*.pem")):
            public = load_public_pem(pem.read_text(), str(pem))
            keys[key_id(public)] = public
        return keys
