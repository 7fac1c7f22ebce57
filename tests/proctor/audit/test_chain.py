"""The fast entry encoding is exactly RFC 8785 of the whole entry, for any content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from proctor.audit.chain import ChainRow, _json, entry_bytes, format_time
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
    payload: dict[str, object],
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
    whole = {
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
