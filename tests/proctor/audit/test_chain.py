"""The fast entry encoding is exactly RFC 8785 of the whole entry, for any content; a break
in the chain says what kind of damage it shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from proctor.audit.chain import (
    GENESIS_HASH,
    ChainRow,
    _json,
    entry_bytes,
    format_time,
    sealed,
    verify_rows,
)
from proctor.audit.findings import FindingKind
from proctor.canonical import canonical_text

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
optional_text = st.none() | st.text()


@given(
    payload=st.dictionaries(st.text(), json_values, max_size=5),
    key=st.text(),
    event_type=st.text(min_size=1),
    workflow=optional_text,
    agent=optional_text,
    action=optional_text,
    actor=optional_text,
    seq=st.integers(1, 2**53 - 1),
    moment=st.datetimes(timezones=st.just(UTC)),
)
def test_entry_bytes_equal_rfc8785_of_the_whole_entry(
    payload: dict[str, JsonValue],
    key: str,
    event_type: str,
    workflow: str | None,
    agent: str | None,
    action: str | None,
    actor: str | None,
    seq: int,
    moment: datetime,
) -> None:
    row = ChainRow(
        seq=seq,
        recorded_at=moment,
        idempotency_key=key,
        workflow_id=workflow,
        event_type=event_type,
        agent_id=agent,
        action=action,
        actor=actor,
        payload=canonical_text(payload),
        prev_hash="ab" * 32,
        hash="",
    )
    whole: dict[str, JsonValue] = {
        "seq": seq,
        "recorded_at": format_time(moment),
        "idempotency_key": key,
        "workflow_id": workflow,
        "event_type": event_type,
        "agent_id": agent,
        "action": action,
        "actor": actor,
        "payload": payload,
        "prev_hash": "ab" * 32,
    }
    assert entry_bytes(row) == rfc8785.dumps(whole)


@given(
    value=st.none()
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=127))
    | st.integers(-(2**53) + 1, 2**53 - 1)
)
def test_scalar_shortcuts_write_what_rfc8785_writes(value: str | int | None) -> None:
    assert _json(value) == rfc8785.dumps(value)


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9998, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
    )
)
def test_time_text_is_fixed_width_utc(moment: datetime) -> None:
    assert format_time(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_of(count: int) -> list[ChainRow]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        row = sealed(
            ChainRow(
                seq=seq,
                recorded_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq),
                idempotency_key=f"k{seq}",
                workflow_id=None,
                event_type="t",
                agent_id=None,
                action=None,
                actor="proctor",
                payload=canonical_text({"i": seq}),
                prev_hash=prev,
                hash="",
            )
        )
        rows.append(row)
        prev = row.hash
    return rows


Tamper = Callable[[list[ChainRow]], list[ChainRow]]


@pytest.mark.parametrize(
    "tamper, seq, kind",
    [
        (lambda rows: rows[:4] + rows[5:], 5, FindingKind.ROW_DELETED),
        (
            lambda rows: [*rows[:3], replace(rows[5], seq=4), rows[4], replace(rows[3], seq=6)],
            4,
            FindingKind.ROWS_SWAPPED,
        ),
        (
            lambda rows: [*rows[:2], replace(rows[2], actor="mallory"), *rows[3:]],
            3,
            FindingKind.CONTENT_EDITED,
        ),
        (
            lambda rows: [*rows[:2], replace(rows[2], payload="{"), *rows[3:]],
            3,
            FindingKind.CONTENT_EDITED,
        ),
        (  # re-sealed in place: its own hash holds, the next row's link does not
            lambda rows: [*rows[:2], sealed(replace(rows[2], payload='{"i":99}')), *rows[3:]],
            4,
            FindingKind.LINK_BROKEN,
        ),
    ],
    ids=["deleted", "swapped", "edited", "not-json", "relinked"],
)
def test_a_break_carries_the_kind_of_damage_it_shows(
    tamper: Tamper, seq: int, kind: FindingKind
) -> None:
    rows = chain_of(8)
    assert verify_rows(rows).intact

    found = verify_rows(tamper(rows)).first_break

    assert found is not None
    assert (found.seq, found.kind) == (seq, kind)
