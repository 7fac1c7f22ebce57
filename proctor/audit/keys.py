"""The worker's ledger keys, held in files outside Postgres, and the keys a verifier trusts.

A database administrator who can rewrite `audit_log` must not also hold what signs checkpoints,
keys the redaction HMAC, or unwraps subject keys; so none of these ever enters the database.
Nor does a verifier take a checkpoint key from the database or the sink: anyone who can write
there could put their own. It trusts only keys pinned where they cannot: the worker's key
directory, `PROCTOR_AUDIT_TRUSTED_KEYS`, or `--trusted-key`.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from proctor.errors import KeyMaterialError
from proctor.secret_files import SecretFileExists, write_new_secret

SIGNING_KEY_FILE = "checkpoint-signing.pem"
HMAC_KEY_FILE = "redaction-hmac.key"
KEK_FILE = "subject-kek.key"


class KeyFileError(KeyMaterialError, RuntimeError):
    """A key file is missing, unreadable or not a key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short, stable name of a verification key: SHA-256 of its raw bytes, 16 hex chars."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_pem(text: str, source: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise KeyFileError(f"{source}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{source}: checkpoint keys are Ed25519")
    return key


@dataclass(frozen=True)
class TrustedKeys:
    """The checkpoint keys a verification accepts, and where they were pinned (for messages)."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    source: str = "no key"


def load_pinned(paths: Sequence[Path], source: str) -> dict[str, Ed25519PublicKey]:
    """Public keys from PEM files; `source` names the option or setting in errors."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise KeyFileError(f"{source} {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"{source} {path}: cannot read it ({exc})") from exc
        public = load_public_pem(text, str(path))
        keys[key_id(public)] = public
    return keys


def worker_public_key(directory: Path) -> Ed25519PublicKey | None:
    """The public half of the worker's signing key in its key directory, if it is there."""
    path = directory / SIGNING_KEY_FILE
    return _load_signing(path).public_key() if path.exists() else None


def trusted_keys(
    key_dir: Path, configured: str | None, given: Sequence[Path] = (), option: str = "--trusted-key"
) -> TrustedKeys:
    """Keys given on the command line; else those of the setting; else the worker's own.

    Each replaces the next rather than adding to it, so pinning a key also un-pins the rest.
    """
    if given:
        return TrustedKeys(load_pinned(given, option), option)
    paths = [Path(p.strip()) for p in (configured or "").split(",") if p.strip()]
    if paths:
        return TrustedKeys(
            load_pinned(paths, "PROCTOR_AUDIT_TRUSTED_KEYS"), "PROCTOR_AUDIT_TRUSTED_KEYS"
        )
    public = worker_public_key(key_dir)
    if public is None:
        return TrustedKeys(source=f"no key ({key_dir} holds no {SIGNING_KEY_FILE})")
    return TrustedKeys({key_id(public): public}, f"the worker's key in {key_dir}")


@dataclass(frozen=True)
class LedgerKeys:
    signing: Ed25519PrivateKey
    redaction_hmac: bytes
    subject_kek: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.signing.public_key())

    @property
    def pinned(self) -> dict[str, Ed25519PublicKey]:
        """This worker's own verification key, as a verifier's trusted set."""
        public = self.signing.public_key()
        return {key_id(public): public}

    @classmethod
    def generate(cls) -> LedgerKeys:
        """Fresh keys held in memory only (tests, benchmarks)."""
        return cls(Ed25519PrivateKey.generate(), secrets.token_bytes(32), secrets.token_bytes(32))

    @classmethod
    def load(cls, directory: Path) -> LedgerKeys:
        """Read existing keys; never create (a new key would not match the ledger)."""
        missing = [
            name
            for name in (SIGNING_KEY_FILE, HMAC_KEY_FILE, KEK_FILE)
            if not (directory / name).exists()
        ]
        if missing:
            raise KeyFileError(
                f"{directory}: missing {', '.join(missing)}; point "
                "PROCTOR_AUDIT_KEY_DIR at the worker's key directory"
            )
        return cls.load_or_create(directory)

    @classmethod
    def load_or_create(cls, directory: Path) -> LedgerKeys:
        """Read the keys, creating any that are missing (files 0600, directory 0700)."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        signing_path = directory / SIGNING_KEY_FILE
        if not signing_path.exists():
            fresh = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_secret(signing_path, fresh)
        return cls(
            _load_signing(signing_path),
            _secret_bytes(directory / HMAC_KEY_FILE),
            _secret_bytes(directory / KEK_FILE),
        )


def _load_signing(path: Path) -> Ed25519PrivateKey:
    try:
        signing = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: cannot load the signing key ({exc})") from exc
    if not isinstance(signing, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: the checkpoint signing key must be Ed25519")
    return signing


def _secret_bytes(path: Path) -> bytes:
    if not path.exists():
        _write_secret(path, secrets.token_bytes(32))
    data = path.read_bytes()
    if len(data) != 32:
        raise KeyFileError(f"{path}: expected 32 bytes, found {len(data)}")
    return data


def _write_secret(path: Path, data: bytes) -> None:
    """Create the key unless another process just did (then theirs is the one read)."""
    with contextlib.suppress(SecretFileExists):
        write_new_secret(path, data)
