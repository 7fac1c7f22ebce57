"""Agent keys: generation, storage format, request signing and verification (pure, no I/O
except reading/writing the key file the caller names).

Signatures cover the RFC 8785 canonical JSON of the whole request, so any edit of any field
(params, action, time, nonce, execution) invalidates them, while key order does not matter.
RSA keys sign with RSA-PSS/SHA-256; Ed25519 keys sign with Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from proctor.attestation import verify_bytes
from proctor.canonical import canonical_bytes
from proctor.errors import KeyMaterialError
from proctor.models import ActionRequest, DelegationLink, ExecutionSpec
from proctor.secret_files import write_new_secret

KeyAlgorithm = Literal["rsa-2048", "ed25519"]
AGENT_HEADER = "Proctor-Agent:"
AGENT_KEY_VARIABLE = "PROCTOR_AGENT_KEY"
PASSPHRASE_VARIABLE = "PROCTOR_KEY_PASSPHRASE"  # noqa: S105 (a variable's name)
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


class AgentKeyError(KeyMaterialError):
    """A key file or public key that cannot be used."""


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def generate_private_key(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise AgentKeyError(f"unsupported key algorithm {algorithm!r}: use rsa-2048 or ed25519")


def algorithm_of(key: PrivateKey | PublicKey) -> KeyAlgorithm:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise AgentKeyError(f"RSA key of {key.key_size} bits is too small: at least 2048")
        return "rsa-2048"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    raise AgentKeyError(f"unsupported key type {type(key).__name__}: use RSA-2048 or Ed25519")


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@lru_cache(maxsize=1024)
def load_public_key(pem: str) -> PublicKey:
    """Parsed once per distinct PEM: verification is on every request's path."""
    return _parse_public_key(pem)


def _parse_public_key(pem: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AgentKeyError(f"malformed public key PEM: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise AgentKeyError(f"unsupported public key type {type(key).__name__}")
    algorithm_of(key)
    return key


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PSS, hashes.SHA256())
    return key.sign(data)


def verify_request(request: ActionRequest, public_key_pem: str) -> bool:
    """True only for a present, well-formed signature by this key over this exact request."""
    if not request.signature:
        return False
    try:
        signature = base64.b64decode(request.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return verify_bytes(
        load_public_key(public_key_pem), signature, canonical_bytes(request.signing_payload())
    )


@dataclass(frozen=True)
class AgentKey:
    """An agent's private key. It never leaves the agent's process: the server keeps only the
    public half."""

    agent_id: str
    private_key: PrivateKey

    @property
    def algorithm(self) -> KeyAlgorithm:
        return algorithm_of(self.private_key)

    @property
    def public_key_pem(self) -> str:
        return public_pem(self.private_key)

    @classmethod
    def generate(cls, agent_id: str, algorithm: KeyAlgorithm = "ed25519") -> AgentKey:
        return cls(agent_id, generate_private_key(algorithm))

    @classmethod
    def load(cls, path: str | os.PathLike[str], passphrase: bytes | str | None = None) -> AgentKey:
        """Read a key written by `save` (or `proctor agent create`)."""
        file = Path(path)
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise AgentKeyError(f"{file}: cannot read key file: {exc.strerror}") from exc
        return cls.from_pem(text, passphrase, source=str(file))

    @classmethod
    def from_pem(
        cls, text: bytes | str, passphrase: bytes | str | None = None, *, source: str = "key"
    ) -> AgentKey:
        """A key from its file's text: the `Proctor-Agent: <id>` line, then the PEM block;
        errors name `source` (a file, a variable), never the key."""
        data = text.encode() if isinstance(text, str) else text
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
        agent_id = _agent_id_from_header(data)
        if agent_id is None:
            raise AgentKeyError(f"{source}: no '{AGENT_HEADER} <id>' line before the PEM block")
        try:
            key = serialization.load_pem_private_key(data, password=secret or None)
        except TypeError as exc:
            raise AgentKeyError(f"{source}: {exc} (give the passphrase)") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise AgentKeyError(f"{source}: malformed or undecryptable private key: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise AgentKeyError(f"{source}: unsupported key type {type(key).__name__}")
        algorithm_of(key)
        return cls(agent_id, key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentKey:
        """The agent's key from `PROCTOR_AGENT_KEY` (a key file's path, or its text itself),
        decrypted with `PROCTOR_KEY_PASSPHRASE` if set, as `proctor agent create` encrypts it:
        no key held in code or passed around as a global."""
        env = os.environ if environ is None else environ
        given = env.get(AGENT_KEY_VARIABLE, "").strip()
        if not given:
            raise AgentKeyError(
                f"{AGENT_KEY_VARIABLE} is not set: give the agent's key file path or its text"
            )
        passphrase = env.get(PASSPHRASE_VARIABLE) or None
        if AGENT_HEADER in given or "-----BEGIN" in given:
            return cls.from_pem(given, passphrase, source=AGENT_KEY_VARIABLE)
        return cls.load(Path(given).expanduser(), passphrase)

    def save(self, path: str | os.PathLike[str], passphrase: bytes | None = None) -> Path:
        """Write the key with mode 0600, refusing to overwrite an existing file."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        header = f"{AGENT_HEADER} {self.agent_id}\n".encode()
        write_new_secret(file, header + pem)
        return file

    def sign(self, request: ActionRequest) -> ActionRequest:
        if request.agent_id != self.agent_id:
            raise AgentKeyError(
                f"key belongs to {self.agent_id!r}, request is for {request.agent_id!r}"
            )
        signature = sign_bytes(self.private_key, canonical_bytes(request.signing_payload()))
        return request.model_copy(update={"signature": base64.b64encode(signature).decode()})

    def new_request(
        self,
        action: str,
        params: dict[str, Any],
        execution: ExecutionSpec,
        *,
        request_id: str | None = None,
        requested_at: datetime | None = None,
        triggered_by: str | None = None,
        on_behalf_of: str | None = None,
        delegation: Sequence[DelegationLink] = (),
    ) -> ActionRequest:
        """A fresh, signed request (new id and nonce unless given); `triggered_by` names the
        human the agent acts for, who can then never approve it; `delegation` is the chain
        (root first) letting this agent act for `on_behalf_of`, signed into the request."""
        request = ActionRequest(
            request_id=request_id or uuid.uuid4().hex,
            agent_id=self.agent_id,
            action=action,
            params=params,
            requested_at=requested_at or datetime.now(UTC),
            nonce=secrets.token_urlsafe(24),
            execution=execution,
            triggered_by=triggered_by,
            on_behalf_of=on_behalf_of,
            delegation=tuple(delegation),
        )
        return self.sign(request)

    def delegate(
        self,
        to: str,
        actions: Sequence[str],
        expires_in: timedelta,
        parent: Sequence[DelegationLink] = (),
    ) -> tuple[DelegationLink, ...]:
        """`parent` (a chain ending with this agent, or none) extended by a grant to agent
        `to`, signed by this key: narrower than its parent, and expiring no later."""
        from proctor.delegation import extend_chain  # it builds on this module

        return extend_chain(self, to=to, actions=actions, expires_in=expires_in, parent=parent)


def _agent_id_from_header(text: bytes) -> str | None:
    for raw in text.splitlines():
        line = raw.decode("utf-8", errors="replace").strip()
        if line.startswith("-----BEGIN"):
            return None
        if line.startswith(AGENT_HEADER):
            return line[len(AGENT_HEADER) :].strip() or None
    return None
