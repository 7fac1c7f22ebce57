"""Encrypting every payload Proctor hands to Temporal, so its history holds no secrets.

A governed action's parameters (a customer's email, an amount, a note) travel in workflow
inputs, activity inputs and results, signals and updates; Temporal stores them all in history,
shows them in its UI and copies them into every export. This codec encrypts each payload with
AES-256-GCM before it leaves the process and decrypts it on the way back in.

Wire format of an encrypted payload:
- metadata `encoding: binary/encrypted`, `encryption-key-id: <id>`, `encryption-cipher:
  AES256-GCM`;
- data: a fresh random 96-bit nonce, then the ciphertext (with its 16-byte tag) of the whole
  original payload, serialized, its own metadata (`encoding: json/plain`...) included.
The outer metadata is bound as associated data: changing the key id, the cipher name or the
encoding makes decryption fail, as does any changed byte of the data. Nothing finer (workflow
id, namespace) is bound: the Temporal UI's codec requests and an exported history carry no
such context, and the payloads must stay readable through them.

Payloads that are not encrypted pass through `decode` unchanged: histories written before the
key ring existed (and the recorded fixtures of tests/histories) stay readable and replayable.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from proctor import payload_keys
from proctor.errors import IntegrityError
from proctor.payload_keys import KeyRing, PayloadKeyError

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
CIPHER = "encryption-cipher"
CIPHER_NAME = b"AES256-GCM"
NONCE_BYTES = 12
_BATCH_OFF_LOOP = 64 * 1024
"""Above this many bytes in one call, the work leaves the event loop for a thread."""


class PayloadDecryptError(IntegrityError, ValueError):
    """An encrypted payload this process cannot turn back into its original."""


class UnknownPayloadKey(PayloadDecryptError):
    """The payload names a key the ring does not hold (another ring, or a key removed)."""


class PayloadTampered(PayloadDecryptError):
    """The payload fails authentication: altered, truncated, or not encrypted by Proctor."""


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def key_id_of(payload: Payload) -> str | None:
    """The key an encrypted payload names (None for a clear one)."""
    if not is_encrypted(payload):
        return None
    raw = payload.metadata.get(KEY_ID)
    return raw.decode(errors="replace") if raw is not None else None


def _associated_data(metadata: Mapping[str, bytes]) -> bytes:
    """The outer metadata, canonically: sorted keys, so the order fields arrive in is moot."""
    return _canonical(tuple(sorted(metadata.items())))


@lru_cache(maxsize=64)
def _canonical(items: tuple[tuple[str, bytes], ...]) -> bytes:
    """(Cached: a ring has few keys, so few distinct metadata; JSON per payload cost 4 us.)"""
    return json.dumps({k: v.decode("latin-1") for k, v in items}, separators=(",", ":")).encode()


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM under the ring's current key; decrypts under any key of the ring.

    A payload naming a key this process has not loaded makes it re-read its ring directory
    once before refusing: after `proctor payload-key rotate` on a shared directory, processes
    started earlier read what newer ones write without a restart (and encrypt with the new
    key from then on)."""

    def __init__(self, ring: KeyRing) -> None:
        self._use(ring)

    def _use(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    def _reloaded(self, key_id: str) -> AESGCM | None:
        if self.ring.directory.is_dir():
            try:
                self._use(payload_keys.load(self.ring.directory))
            except PayloadKeyError as exc:
                raise UnknownPayloadKey(
                    f"payload encrypted under key {key_id!r}; re-reading "
                    f"the ring for it failed: {exc}"
                ) from exc
        return self._ciphers.get(key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if sum(len(p.data) for p in payloads) > _BATCH_OFF_LOOP:
            return await asyncio.to_thread(self.encode_sync, payloads)
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if sum(len(p.data) for p in payloads) > _BATCH_OFF_LOOP:
            return await asyncio.to_thread(self.decode_sync, payloads)
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.ring.current
        cipher = self._ciphers[key_id]
        metadata = {"encoding": ENCODING, KEY_ID: key_id.encode(), CIPHER: CIPHER_NAME}
        aad = _associated_data(metadata)
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), aad)
            encoded.append(Payload(metadata=metadata, data=nonce + sealed))
        return encoded

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) if is_encrypted(p) else p for p in payloads]

    def _open(self, payload: Payload) -> Payload:
        key_id = key_id_of(payload)
        if key_id is None:
            raise PayloadTampered(
                "encrypted payload without an encryption-key-id: not written by Proctor's codec"
            )
        cipher = self._ciphers.get(key_id) or self._reloaded(key_id)
        if cipher is None:
            raise UnknownPayloadKey(
                f"payload encrypted under key {key_id!r}, which is not in the key ring at "
                f"{self.ring.directory} (it holds {', '.join(sorted(self.ring.keys))}): "
                "give this process the ring that wrote it (PROCTOR_PAYLOAD_KEY_DIR)"
            )
        data = payload.data
        try:
            clear = cipher.decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], _associated_data(payload.metadata)
            )
        except InvalidTag:
            raise PayloadTampered(
                f"payload under key {key_id!r} fails authentication: altered or truncated "
                "in history, or not written by Proctor"
            ) from None
        original = Payload()
        original.ParseFromString(clear)
        return original


class LockedCodec(PayloadCodec):
    """For a process without a key ring: clear payloads pass both ways; an encrypted one is
    refused with a message naming its key and where this process looked for keys (instead
    of the converter's 'unknown encoding')."""

    def __init__(self, key_dir: str) -> None:
        self.key_dir = key_dir

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for payload in payloads:
            if is_encrypted(payload):
                raise UnknownPayloadKey(
                    f"payload encrypted under key {key_id_of(payload)!r}, but this process "
                    f"has no payload keys (none in {self.key_dir}): set "
                    "PROCTOR_PAYLOAD_KEY_DIR to the ring the workers use"
                )
        return list(payloads)
