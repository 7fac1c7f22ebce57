"""Vote-signing keys: the trusted public halves the workflow checks votes against, and the
private halves that sign them (an approver's own, or an approval service's).

Layout of the approval key directory (trusted: agents must not be able to write it):
`approvers/<approver>/<fingerprint>.pem` for each approver's registered public keys, and
`channels/<name>.pem` for each approval service (the Slack app) that authenticates humans
itself. A key is revoked by deleting its file; votes are checked against the directory as it
is when they arrive.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from proctor.attestation import fingerprint
from proctor.canonical import canonical_bytes
from proctor.errors import KeyMaterialError
from proctor.models import GrantScope, Vote, VoteKeys
from proctor.secret_files import write_new_secret

APPROVER_HEADER = "Proctor-Approver:"
CHANNEL_HEADER = "Proctor-Channel:"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,253}$")


class VoteKeyError(KeyMaterialError):
    """A vote key that cannot be read, written or used; the message names the file."""


def _checked(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name):
        raise VoteKeyError(f"invalid {what} {name[:60]!r}: letters, digits and . _ @ + - only")
    return name


@dataclass(frozen=True)
class VoteSigner:
    """A private key that signs votes. `approver` set: an approver's own key, which can vote
    only as that approver. `channel` set: an approval service's key, which vouches for the
    human it authenticated (any approver)."""

    private_key: ed25519.Ed25519PrivateKey
    approver: str | None = None
    channel: str | None = None

    @property
    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    @property
    def key_id(self) -> str:
        return fingerprint(self.public_key_pem)

    def sign(
        self,
        *,
        workflow_id: str,
        request_digest: str,
        approve: bool,
        note: str | None = None,
        approver: str | None = None,
        channel: str | None = None,
        grant: GrantScope | None = None,
    ) -> Vote:
        """A vote signed over workflow, request digest, approver, verdict, note, channel and
        time, and the standing grant it asks for when there is one (only an approval may)."""
        if grant is not None and not approve:
            raise VoteKeyError("only an approval can ask for a standing grant")
        who = approver or self.approver
        if who is None:
            raise VoteKeyError("a channel key signs for a named approver: give approver=")
        if self.approver is not None and (
            who.strip().casefold() != self.approver.strip().casefold()
        ):
            raise VoteKeyError(f"this key belongs to {self.approver}, not {who}")
        vote = Vote(
            approver=who,
            approve=approve,
            note=note,
            channel=channel or self.channel or "cli",
            request_digest=request_digest,
            workflow_id=workflow_id,
            signed_at=datetime.now(UTC),
            key_id=self.key_id,
            grant=grant,
        )
        signature = self.private_key.sign(canonical_bytes(vote.signing_payload()))
        return vote.model_copy(update={"signature": base64.b64encode(signature).decode()})

    @classmethod
    def generate(cls, *, approver: str | None = None, channel: str | None = None) -> VoteSigner:
        return cls(ed25519.Ed25519PrivateKey.generate(), approver, channel)

    def save(self, path: Path) -> Path:
        """Mode 0600, never overwriting; a header line names whose key it is."""
        header = (
            f"{APPROVER_HEADER} {self.approver}"
            if self.approver
            else f"{CHANNEL_HEADER} {self.channel}"
        )
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_new_secret(path, f"{header}\n".encode() + pem)
        return path

    @classmethod
    def load(cls, path: Path) -> VoteSigner:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise VoteKeyError(f"{path}: cannot read vote key: {exc.strerror}") from exc
        approver = channel = None
        for raw in text.splitlines():
            line = raw.decode("utf-8", errors="replace").strip()
            if line.startswith(APPROVER_HEADER):
                approver = line[len(APPROVER_HEADER) :].strip() or None
            elif line.startswith(CHANNEL_HEADER):
                channel = line[len(CHANNEL_HEADER) :].strip() or None
            elif line.startswith("-----BEGIN"):
                break
        if approver is None and channel is None:
            raise VoteKeyError(
                f"{path}: no '{APPROVER_HEADER} <id>' line: not a vote key "
                "(create one with `proctor approver key create`)"
            )
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
            raise VoteKeyError(f"{path}: malformed vote key: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise VoteKeyError(f"{path}: vote keys are Ed25519, found {type(key).__name__}")
        return cls(key, approver, channel)


class VoteKeyDirectory:
    """The trusted public keys of approvers and approval services."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _approver_dir(self, approver: str) -> Path:
        return self.root / "approvers" / _checked(approver.strip().casefold(), "approver id")

    def _channel_file(self, channel: str) -> Path:
        return self.root / "channels" / f"{_checked(channel, 'channel name')}.pem"

    def register_approver(self, approver: str, public_key_pem: str) -> Path:
        path = self._approver_dir(approver) / f"{fingerprint(public_key_pem)[:32]}.pem"
        _write_public(path, public_key_pem)
        return path

    def register_channel(self, channel: str, public_key_pem: str) -> Path:
        path = self._channel_file(channel)
        _write_public(path, public_key_pem)
        return path

    def approver_keys(self, approver: str) -> tuple[str, ...]:
        try:
            folder = self._approver_dir(approver)
        except VoteKeyError:
            return ()
        return tuple(_read(p) for p in sorted(folder.glob("*.pem"))) if folder.is_dir() else ()

    def channel_keys(self, channel: str) -> tuple[str, ...]:
        try:
            path = self._channel_file(channel)
        except VoteKeyError:
            return ()
        return (_read(path),) if path.is_file() else ()

    def keys_for(self, approver: str, channel: str) -> VoteKeys:
        return VoteKeys(approver=self.approver_keys(approver), channel=self.channel_keys(channel))

    def approvers(self) -> list[str]:
        folder = self.root / "approvers"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def load_or_create_channel_key(path: Path, directory: VoteKeyDirectory, channel: str) -> VoteSigner:
    """The approval service's signing key; made (with its trusted public half registered) on
    first start, as the embedded stack does for its other keys."""
    if not path.exists():
        signer = VoteSigner.generate(channel=channel)
        signer.save(path)
        directory.register_channel(channel, signer.public_key_pem)
        return signer
    signer = VoteSigner.load(path)
    if signer.channel != channel:
        raise VoteKeyError(
            f"{path}: a key of {signer.approver or signer.channel}, not of the "
            f"{channel!r} approval service"
        )
    return signer


def _write_public(path: Path, pem: str) -> None:
    fingerprint(pem)  # refuse what is not a usable public key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pem)
    tmp.replace(path)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii")


def provisioned_key_path(state_dir: Path, approver: str) -> Path:
    """Where the embedded stack keeps an approver's private vote key (demo and local use only:
    in production each approver holds their own key)."""
    name = _checked(approver.strip().casefold(), "approver id")
    return state_dir / "approver-keys" / f"{name}.pem"


def provision_approver_keys(
    approvers: list[str], state_dir: Path, directory: VoteKeyDirectory
) -> list[str]:
    """Give every approver of the directory a vote key on the embedded stack, so
    `proctor approve --as ID` works out of the box; returns the approvers provisioned now."""
    made = []
    for approver in approvers:
        path = provisioned_key_path(state_dir, approver)
        if path.exists():
            continue
        signer = VoteSigner.generate(approver=approver)
        signer.save(path)
        directory.register_approver(approver, signer.public_key_pem)
        made.append(approver)
    return made
