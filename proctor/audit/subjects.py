"""Data subjects in the ledger: their pseudonymous names and where their data keys come from.

Pure: redaction encrypts personal fields under a subject's key through `SubjectKeySource`, a
port that `proctor.audit.erasure.SubjectKeys` implements over the database, so the redaction
code never reaches a store.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol


def subject_ref(hmac_key: bytes, subject: str) -> str:
    """The subject's pseudonymous name in the ledger: an HMAC, never the id itself."""
    return hmac.new(hmac_key, b"subject\x00" + subject.encode(), hashlib.sha256).hexdigest()[:32]


class SubjectKeySource(Protocol):
    """Subjects' data keys, by `subject_ref`."""

    async def key_for(self, ref: str) -> bytes:
        """The subject's key, created on first use."""
        ...

    async def existing(self, ref: str) -> bytes | None:
        """The subject's key, or None if there is none (never made, or forgotten)."""
        ...
