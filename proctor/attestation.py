"""Signatures the workflows check themselves: votes, permission asks and handler reports.

Pure (no clock, no I/O, no randomness: verification only), so a replay judges every message
exactly as the original run did. Keys arrive as PEM text recorded in history (from the trusted
key directories, through an activity); documents are RFC 8785 canonical JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from proctor.canonical import canonical_bytes
from proctor.errors import KeyMaterialError
from proctor.models import HandlerReport, JsonValue, PermissionRequest, Vote

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
VOTE_CLOCK_SKEW = timedelta(minutes=5)
"""A vote may be signed this much before the escalation it answers (clocks differ)."""


class UnusableKey(KeyMaterialError):
    """A PEM that is not an RSA-2048+ or Ed25519 public key."""


@lru_cache(maxsize=1024)
def public_key(pem: str) -> PublicKey:
    """Parsed once per distinct PEM: verification is on every request's path."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise UnusableKey(f"malformed public key PEM: {exc}") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise UnusableKey(f"RSA key of {key.key_size} bits is too small: at least 2048")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise UnusableKey(f"unsupported public key type {type(key).__name__}")


@lru_cache(maxsize=1024)
def fingerprint(pem: str) -> str:
    """SHA-256 of the key's DER SubjectPublicKeyInfo, hex: names a key in votes and logs."""
    der = public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify_signature(pem: str, signature_b64: str, document: dict[str, JsonValue]) -> bool:
    """True only for a present, well-formed signature by this key over this exact document."""
    if not signature_b64:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key = public_key(pem)
    except (binascii.Error, ValueError):
        return False
    return verify_bytes(key, signature, canonical_bytes(document))


def verify_bytes(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """RSA-PSS/SHA-256 or Ed25519, by the key's type; False on any mismatch."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _PSS, hashes.SHA256())
        else:
            key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def signed_by(pems: tuple[str, ...] | list[str], key_id: str) -> str | None:
    """The PEM among `pems` whose fingerprint is `key_id`, if any (unusable PEMs skipped)."""
    for pem in pems:
        try:
            if fingerprint(pem) == key_id:
                return pem
        except UnusableKey:
            continue
    return None


def vote_refusal(
    vote: Vote,
    *,
    workflow_id: str,
    request_digest: str,
    approver_keys: tuple[str, ...],
    channel_keys: tuple[str, ...],
    agent_keys: tuple[str, ...],
    escalated_at: datetime,
) -> str | None:
    """Why a vote's signature does not make it the named approver's, or None if it does.

    A vote counts only when signed by the approver's own registered key, or by the key of
    the approval service named as its channel (which authenticated the human itself). It is
    bound to this workflow and this exact request, and never signed by the agent's keys.
    """
    if not vote.signature or not vote.key_id:
        return "unsigned vote: a vote must be signed by the approver's key or an approval service"
    if vote.workflow_id != workflow_id:
        return "the vote is signed for a different workflow"
    if (vote.request_digest or "") != request_digest:
        return "the vote is bound to a different request"
    if signed_by(agent_keys, vote.key_id) is not None:
        return "signed with the requesting agent's key: agents never vote"
    pem = signed_by(approver_keys, vote.key_id) or signed_by(channel_keys, vote.key_id)
    if pem is None:
        return (
            f"signed by key {vote.key_id[:16]}, which is neither a registered key of "
            f"{vote.approver} nor of the {vote.channel!r} approval service"
        )
    if not verify_signature(pem, vote.signature, vote.signing_payload()):
        return "bad vote signature: it does not match the vote"
    if vote.signed_at is None or vote.signed_at < escalated_at - VOTE_CLOCK_SKEW:
        return "the vote was signed before the request escalated"
    return None


def ask_is_signed(ask: PermissionRequest, workflow_id: str, agent_keys: tuple[str, ...]) -> bool:
    """A permission ask counts only when signed by the agent's key for this workflow."""
    return ask.workflow_id == workflow_id and any(
        verify_signature(pem, ask.signature, ask.signing_payload()) for pem in agent_keys
    )


def report_is_signed(report: HandlerReport, agent_keys: tuple[str, ...]) -> bool:
    """A handler's report counts only when signed by the agent's key."""
    return any(
        verify_signature(pem, report.signature, report.signing_payload()) for pem in agent_keys
    )
