"""The payload key ring: AES-256 keys that encrypt what Proctor puts in Temporal history.

Held in a directory outside Temporal (`PROCTOR_PAYLOAD_KEY_DIR`), never in a workflow input: a
key that travelled through Temporal would sit in the history it protects. Each key is a file
`<id>.key` of 32 random bytes (mode 0600, directory 0700). A key's id is its creation time
followed by a fingerprint of its bytes, so ids sort by age and a mangled file is caught on load.
The file `current` names the key that encrypts; every key in the ring decrypts, so rotating
never strands an old history. Keys are never deleted here: a deleted key makes every payload
it wrote unreadable, including those of workflows still waiting.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from proctor.errors import KeyMaterialError
from proctor.secret_files import write_new_secret

KEY_BYTES = 32
CURRENT_FILE = "current"
KEY_SUFFIX = ".key"
_KEY_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


class PayloadKeyError(KeyMaterialError):
    """A key ring that is missing, unreadable, too widely readable or inconsistent."""


class PayloadKeysMissing(PayloadKeyError):
    """No key ring where one is required; the message says where and how to create one."""


def fingerprint(key: bytes) -> str:
    """8 hex chars of SHA-256 over the key: names it without revealing it."""
    return hashlib.sha256(b"proctor-payload-key\0" + key).hexdigest()[:8]


@dataclass(frozen=True)
class KeyRing:
    """Every key that may decrypt, and the one that encrypts."""

    directory: Path
    keys: dict[str, bytes]
    current: str

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current]

    @classmethod
    def in_memory(cls, *keys: bytes) -> KeyRing:
        """A ring not backed by files (tests, benchmarks); the last key encrypts."""
        ring = {_new_id(key): key for key in (keys or (secrets.token_bytes(KEY_BYTES),))}
        return cls(Path("<memory>"), ring, list(ring)[-1])


def exists(directory: Path) -> bool:
    """Whether `directory` holds at least one key (a ring to load)."""
    return directory.is_dir() and any(directory.glob(f"*{KEY_SUFFIX}"))


def load(directory: Path) -> KeyRing:
    """Read the ring; never create one (a new key could not read what the old ones wrote)."""
    if not exists(directory):
        raise PayloadKeysMissing(
            f"{directory}: no payload keys; create them with `proctor payload-key create` "
            "(or point PROCTOR_PAYLOAD_KEY_DIR at the ring the workers use)"
        )
    keys = {
        path.name.removesuffix(KEY_SUFFIX): _read_key(path)
        for path in sorted(directory.glob(f"*{KEY_SUFFIX}"))
    }
    return KeyRing(directory, keys, _current(directory, keys))


def create(directory: Path) -> KeyRing:
    """A new ring with one key; refuses if a ring is already there."""
    if exists(directory):
        raise PayloadKeyError(
            f"{directory}: a payload key ring is already there "
            "(`proctor payload-key rotate` adds a key to it)"
        )
    _add_key(directory)
    return load(directory)


def load_or_create(directory: Path) -> tuple[KeyRing, bool]:
    """The ring, created first if there is none (the embedded stack); True if created."""
    if exists(directory):
        return load(directory), False
    return create(directory), True


def rotate(directory: Path) -> KeyRing:
    """Add a key and make it current; the older keys stay to decrypt what they wrote."""
    load(directory)  # refuse to rotate a ring that is missing or broken
    _add_key(directory)
    return load(directory)


def created_at(key_id: str) -> datetime:
    """When a key was made, from its id."""
    return datetime.strptime(key_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _new_id(key: bytes) -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{fingerprint(key)}"


def _add_key(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_BYTES)
    key_id = _new_id(key)
    write_new_secret(directory / f"{key_id}{KEY_SUFFIX}", key)
    _replace(directory / CURRENT_FILE, f"{key_id}\n".encode())
    return key_id


def _read_key(path: Path) -> bytes:
    key_id = path.name.removesuffix(KEY_SUFFIX)
    if not _KEY_ID.match(key_id):
        raise PayloadKeyError(
            f"{path}: not a payload key name (expected "
            "YYYYMMDDTHHMMSSZ-xxxxxxxx.key, as `proctor payload-key` writes)"
        )
    _check_private(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise PayloadKeyError(f"{path}: cannot read the payload key ({exc.strerror})") from exc
    if len(key) != KEY_BYTES:
        raise PayloadKeyError(f"{path}: expected {KEY_BYTES} bytes, found {len(key)}")
    if fingerprint(key) != key_id.split("-")[1]:
        raise PayloadKeyError(
            f"{path}: the key's bytes do not match its name (altered or copied over another key)"
        )
    return key


def _check_private(path: Path) -> None:
    """Like ssh: a key others may read is refused, not silently used."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PayloadKeyError(
            f"{path}: readable by others (mode {mode:04o}); run `chmod 600 {path}`"
        )


def _current(directory: Path, keys: dict[str, bytes]) -> str:
    marker = directory / CURRENT_FILE
    if not marker.exists():
        return max(keys)  # ids sort by creation time: the newest encrypts
    named = marker.read_text().strip()
    if named not in keys:
        raise PayloadKeyError(
            f"{marker}: names key {named!r}, which is not in the ring ({', '.join(sorted(keys))})"
        )
    return named


def _replace(path: Path, data: bytes) -> None:
    """Atomically: a reader sees the old marker or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    write_new_secret(temporary, data)
    os.replace(temporary, path)
