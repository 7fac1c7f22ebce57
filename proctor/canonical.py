"""RFC 8785 canonical JSON and the digests built on it.

Signatures and the audit chain must hash the same bytes on every machine, whatever the key
order or number formatting of the producer; the `rfc8785` library guarantees that.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from proctor.errors import InputError


class CanonicalizationError(InputError):
    """A value cannot be represented in canonical JSON (NaN, huge int, non-JSON type)."""


def canonical_bytes(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(f"not canonical JSON: {exc}") from exc


def canonical_text(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `value`."""
    return sha256_hex(canonical_bytes(value))
