"""Payload protection before hashing: redact secrets and personal data, encrypt erasable fields.

What is hashed is what is stored, so protection happens before the append: sensitive fields
become a marker carrying a keyed HMAC of the value (an investigator with the key can search for
a known value, nobody can read it back), detectors do the same for emails, card numbers, SSNs,
phone numbers and tokens inside free text, and personal fields of a named data subject are
encrypted under that subject's key (deterministically, so a retried append matches its first).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from proctor.audit.rules import AuditRules
from proctor.audit.subjects import SubjectKeySource, subject_ref
from proctor.canonical import canonical_bytes
from proctor.models import AuditEvent

SCANNED = frozenset({"params", "result", "error", "note", "detail"})
"""Top-level payload members that carry what agents, tools and people typed: detectors scan
these. The rest is governance metadata (approver identities, rule ids, digests) that an auditor
must be able to read; sensitive and personal field names are redacted everywhere."""
ERASABLE = "$erasable"
ERASED = "[erased]"
_MARKER = re.compile(r"\[redacted:[a-z_]+:[0-9a-f]{32}\]")

_DETECTORS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "card": re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
    "ssn": re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)"),
    "phone": re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}"
        r"(?!\d)|(?<![\w+])\+\d{8,15}(?!\d)"
    ),
    "secret": re.compile(
        r"\b(?:sk|pk|rk)[-_](?:live|test|proj)?[-_]?[A-Za-z0-9]{16,}"
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abposr]-[A-Za-z0-9-]{10,}"
        r"|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{35}"
        r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
        r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/-]{16,}=*"
    ),
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def value_hmac(key: bytes, value: Any) -> str:
    """The searchable fingerprint of a redacted value (HMAC-SHA256 of its canonical JSON)."""
    return hmac.new(key, canonical_bytes(value), hashlib.sha256).hexdigest()[:32]


def marker_ending(fingerprint: str) -> str:
    """How every marker of a value with this fingerprint ends, whatever its kind: what a search
    of the stored payload text looks for."""
    return f":{fingerprint}]"


def subject_mention(ref: str) -> str:
    """How an encrypted field names its subject in the stored (canonical JSON) payload text."""
    return f'"subject":"{ref}"'


class Redactor:
    """Everything but encryption: pure, synchronous, keyed."""

    def __init__(self, hmac_key: bytes, rules: AuditRules) -> None:
        self.key = hmac_key
        self.rules = rules

    def marker(self, kind: str, value: Any) -> str:
        return f"[redacted:{kind}:{value_hmac(self.key, value)}]"

    def scrub_text(self, text: str) -> str:
        if _MARKER.fullmatch(text):
            return text
        for kind in ("secret", "email", "card", "ssn", "phone"):
            if kind in self.rules.detectors:
                text = _DETECTORS[kind].sub(functools.partial(self._detected, kind), text)
        return text

    def _detected(self, kind: str, match: re.Match[str]) -> str:
        found = match.group(0)
        if kind == "card":
            digits = re.sub(r"\D", "", found)
            if not (13 <= len(digits) <= 19 and luhn_valid(digits)):
                return found
            return self.marker(kind, digits)
        return self.marker(kind, found)


class PayloadProtector:
    """Applies the current audit rules to an event's payload before it is hashed."""

    def __init__(
        self,
        rules: Callable[[], AuditRules],
        hmac_key: bytes,
        subject_keys: SubjectKeySource | None,
    ) -> None:
        self.rules = rules
        self.hmac_key = hmac_key
        self.subject_keys = subject_keys

    async def protect(self, event: AuditEvent) -> AuditEvent:
        rules = self.rules()
        redactor = Redactor(self.hmac_key, rules)
        payload = _reduce(event.payload, rules.level_for(event.agent_id))
        subject = _subject(payload, rules)
        cipher = None
        if subject is not None and self.subject_keys is not None and rules.personal_fields:
            ref = subject_ref(self.hmac_key, subject)
            cipher = (ref, AESSIV(await self.subject_keys.key_for(ref)))
        walker = _Walker(redactor, rules, cipher, event.idempotency_key)
        protected = {
            name: walker.field(name, value, f"/{name}", scan=name in SCANNED)
            for name, value in payload.items()
        }
        return event.model_copy(update={"payload": protected})


class _Walker:
    def __init__(
        self, redactor: Redactor, rules: AuditRules, cipher: tuple[str, AESSIV] | None, key: str
    ) -> None:
        self.redactor = redactor
        self.rules = rules
        self.cipher = cipher
        self.key = key

    def walk(self, value: Any, path: str, scan: bool) -> Any:
        if isinstance(value, dict):
            return {
                name: self.field(name, item, f"{path}/{name}", scan) for name, item in value.items()
            }
        if isinstance(value, list):
            return [self.walk(item, f"{path}/{index}", scan) for index, item in enumerate(value)]
        if isinstance(value, str) and scan:
            return self.redactor.scrub_text(value)
        return value

    def field(self, name: str, value: Any, path: str, scan: bool) -> Any:
        lowered = name.lower()
        if lowered in self.rules.personal_fields:
            if self.cipher is not None:
                ref, aead = self.cipher
                sealed = aead.encrypt(canonical_bytes(value), [self.key.encode(), path.encode()])
                return {ERASABLE: {"subject": ref, "ciphertext": base64.b64encode(sealed).decode()}}
            return self.redactor.marker("personal", value)
        if lowered in self.rules.sensitive_fields:
            return self.redactor.marker("field", value)
        return self.walk(value, path, scan)


def _reduce(payload: dict[str, Any], level: str) -> dict[str, Any]:
    """Apply the audit level: what of parameters and results is kept at all."""
    if level == "full":
        return payload
    reduced = dict(payload)
    if "result" in reduced and reduced["result"] is not None:
        result = reduced["result"]
        reduced["result"] = {"type": type(result).__name__, "size": len(canonical_bytes(result))}
    if level == "minimal" and isinstance(reduced.get("params"), dict):
        reduced["params"] = {"fields": sorted(reduced["params"])}
    return reduced


def _subject(payload: dict[str, Any], rules: AuditRules) -> str | None:
    params = payload.get("params")
    for path in rules.data_subjects:
        found: Any = params
        for part in path.removeprefix("params.").split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if isinstance(found, str | int) and not isinstance(found, bool) and str(found):
            return str(found)
    return None


class Revealer:
    """Reads erasable fields back for those allowed to (the CLI, reports); erased stay erased."""

    def __init__(self, subject_keys: SubjectKeySource) -> None:
        self.subject_keys = subject_keys
        self._keys: dict[str, AESSIV | None] = {}

    async def reveal(self, payload: Any, idempotency_key: str, path: str = "") -> Any:
        if isinstance(payload, dict):
            sealed = payload.get(ERASABLE)
            if isinstance(sealed, dict) and len(payload) == 1:
                return await self._open(sealed, idempotency_key, path)
            return {
                name: await self.reveal(item, idempotency_key, f"{path}/{name}")
                for name, item in payload.items()
            }
        if isinstance(payload, list):
            return [
                await self.reveal(item, idempotency_key, f"{path}/{index}")
                for index, item in enumerate(payload)
            ]
        return payload

    async def _open(self, sealed: dict[str, Any], idempotency_key: str, path: str) -> Any:
        ref = str(sealed.get("subject"))
        if ref not in self._keys:
            key = await self.subject_keys.existing(ref)
            self._keys[ref] = None if key is None else AESSIV(key)
        aead = self._keys[ref]
        if aead is None:
            return ERASED
        try:
            plain = aead.decrypt(
                base64.b64decode(str(sealed.get("ciphertext"))),
                [idempotency_key.encode(), path.encode()],
            )
        except (InvalidTag, ValueError):
            return ERASED
        return json.loads(plain)


def redact_for_display(
    rules: AuditRules, hmac_key: bytes, params: dict[str, Any]
) -> dict[str, Any]:
    """Parameters as people outside the ledger may see them (Slack): sensitive and personal
    fields replaced by markers, free text scanned by the detectors; nothing is encrypted."""
    walker = _Walker(Redactor(hmac_key, rules), rules, None, "")
    return {
        name: walker.field(name, value, f"/{name}", scan=True) for name, value in params.items()
    }
