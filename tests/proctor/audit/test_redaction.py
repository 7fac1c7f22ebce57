"""Redaction before hashing, keyed fingerprints, and erasure by destroying a subject's key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from proctor.audit.erasure import SubjectKeys
from proctor.audit.keys import LedgerKeys
from proctor.audit.redaction import ERASED, PayloadProtector, Redactor, Revealer, value_hmac
from proctor.audit.rules import AuditRules
from proctor.audit.subjects import subject_ref
from proctor.db import connect_pool
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog
from tests.helpers.database import DatabaseFactory

KEYS = LedgerKeys.generate()
RULES = AuditRules(
    sensitive_fields=frozenset({"iban", "password"}),
    personal_fields=frozenset({"customer_email", "name", "address"}),
    data_subjects=("customer_email",),
)


def scrub(text: str, rules: AuditRules = RULES) -> str:
    return Redactor(KEYS.redaction_hmac, rules).scrub_text(text)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("mail jane.doe+vip@example.co.uk now", "email"),
        ("card 4111 1111 1111 1111 exp 12/29", "card"),
        ("card 4111-1111-1111-1111", "card"),
        ("ssn 123-45-6789", "ssn"),
        ("call +1 415 555 0100 or", "phone"),
        ("call (415) 555-0100", "phone"),
        ("key sk-live-abcdefghijklmnop1234", "secret"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "secret"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "secret"),
        ("aws AKIAABCDEFGHIJKLMNOP", "secret"),
        ("slack xoxb-1234567890-abcdef", "secret"),
    ],
)
def test_detectors_replace_what_they_find_with_a_keyed_marker(text: str, kind: str) -> None:
    scrubbed = scrub(text)
    assert f"[redacted:{kind}:" in scrubbed
    assert scrubbed.split(" ")[0] == text.split(" ")[0]  # only the match is replaced


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112",  # fails Luhn
        "2026-11-23T10:00:00.000000Z",  # a timestamp
        "action-4f1c2d3e-1234-5678-9abc-def012345678",
        "amount 1234.56 EUR, 3 items",
        "sha " + "ab" * 32,
    ],
)
def test_detectors_leave_ordinary_text_alone(text: str) -> None:
    assert scrub(text) == text


def test_detectors_can_be_chosen() -> None:
    only_email = AuditRules(detectors=frozenset({"email"}))
    assert scrub("ssn 123-45-6789 a@b.io", only_email).startswith("ssn 123-45-6789 [redacted")


def test_markers_are_stable_and_searchable_with_the_key() -> None:
    first, again = scrub("a@b.io"), scrub("a@b.io")
    assert first == again == f"[redacted:email:{value_hmac(KEYS.redaction_hmac, 'a@b.io')}]"
    other = Redactor(LedgerKeys.generate().redaction_hmac, RULES).scrub_text("a@b.io")
    assert other != first  # without the key, a marker says nothing about the value


@pytest.fixture
async def pool(make_database: DatabaseFactory) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(await make_database(), max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def protected(pool: asyncpg.Pool, rules: AuditRules = RULES) -> AuditLog:
    return AuditLog(
        pool,
        protector=PayloadProtector(
            lambda: rules, KEYS.redaction_hmac, SubjectKeys(pool, KEYS.subject_kek)
        ),
    )


def request_event(key: str, **params: object) -> AuditEvent:
    return AuditEvent(
        idempotency_key=key,
        event_type="decided",
        agent_id="a",
        action="refund",
        actor="a",
        payload={"params": params, "reason": "ok"},
    )


async def test_sensitive_fields_at_any_depth_are_redacted_before_hashing(
    pool: asyncpg.Pool,
) -> None:
    log = protected(pool)
    event = request_event(
        "k1",
        order={"payment": {"IBAN": "DE89370400440532013000"}},
        note="refund to joe@example.com",
        password=["x", "y"],
    )
    first = await log.append(event)
    assert await log.append(event) == first  # a retry protects identically: same row
    payload = await pool.fetchval("SELECT payload FROM audit_log WHERE seq = 1")
    assert "DE8937" not in payload and "joe@example.com" not in payload and '"x"' not in payload
    stored = json.loads(payload)["params"]
    assert stored["order"]["payment"]["IBAN"].startswith("[redacted:field:")
    fingerprint = value_hmac(KEYS.redaction_hmac, "DE89370400440532013000")
    assert stored["order"]["payment"]["IBAN"] == f"[redacted:field:{fingerprint}]"
    assert (await log.verify()).intact


async def test_levels_reduce_what_is_recorded(pool: asyncpg.Pool) -> None:
    rules = AuditRules(levels={"a": "minimal"}, default_level="standard")
    log = protected(pool, rules)
    await log.append(
        AuditEvent(
            idempotency_key="m",
            event_type="outcome",
            agent_id="a",
            payload={"params": {"x": 1, "y": 2}, "result": {"rows": [1, 2]}},
        )
    )
    await log.append(
        AuditEvent(
            idempotency_key="s",
            event_type="outcome",
            agent_id="b",
            payload={"params": {"x": 1}, "result": "done"},
        )
    )
    minimal, standard = [
        json.loads(r["payload"])
        for r in await pool.fetch("SELECT payload FROM audit_log ORDER BY seq")
    ]
    assert minimal == {"params": {"fields": ["x", "y"]}, "result": {"type": "dict", "size": 14}}
    assert standard == {"params": {"x": 1}, "result": {"type": "str", "size": 6}}


async def test_forgetting_a_subject_erases_its_fields_and_the_chain_still_verifies(
    pool: asyncpg.Pool,
    postgres_server_dsn: str,
) -> None:
    log = protected(pool)
    await log.append(
        request_event("jane-1", customer_email="jane@example.com", name="Jane Roe", amount=120)
    )
    await log.append(
        request_event("john-1", customer_email="john@example.com", name="John Poe", amount=80)
    )
    rows = {
        r["idempotency_key"]: r["payload"]
        for r in await pool.fetch("SELECT idempotency_key, payload FROM audit_log")
    }
    assert not any(word in "".join(rows.values()) for word in ("jane", "Jane", "Roe", "john"))

    revealer = Revealer(SubjectKeys(pool, KEYS.subject_kek))
    jane = await revealer.reveal(json.loads(rows["jane-1"]), "jane-1")
    assert jane["params"] == {
        "customer_email": "jane@example.com",
        "name": "Jane Roe",
        "amount": 120,
    }

    keys = SubjectKeys(pool, KEYS.subject_kek)
    ref = subject_ref(KEYS.redaction_hmac, "jane@example.com")
    wrapped = bytes(
        await pool.fetchval(
            "SELECT wrapped_key FROM audit_subject_keys WHERE subject_ref = $1", ref
        )
    )
    assert await keys.forget(ref)
    assert not await keys.forget(ref)

    fresh = Revealer(SubjectKeys(pool, KEYS.subject_kek))
    jane = await fresh.reveal(json.loads(rows["jane-1"]), "jane-1")
    john = await fresh.reveal(json.loads(rows["john-1"]), "john-1")
    assert jane["params"] == {"customer_email": ERASED, "name": ERASED, "amount": 120}
    assert john["params"]["name"] == "John Poe"
    assert (await log.verify()).intact

    # Neither the plaintext nor the destroyed key is left in any data file of the tables.
    await pool.execute("CHECKPOINT")
    files = await pool.fetch(
        "SELECT pg_relation_filepath(c.oid) AS path FROM pg_class c"
        " WHERE c.relname LIKE 'audit_%' AND c.relkind IN ('r', 'i', 't')"
        " AND pg_relation_filepath(c.oid) IS NOT NULL"
    )
    blobs = [bytes(await pool.fetchval("SELECT pg_read_binary_file($1)", f["path"])) for f in files]
    assert len(blobs) >= 5
    for blob in blobs:
        assert b"jane@example.com" not in blob and b"Jane Roe" not in blob
        assert wrapped not in blob
