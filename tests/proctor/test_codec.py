"""The payload codec and its key ring: what goes to Temporal is ciphertext, and only the ring
that wrote it (untampered) turns it back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from proctor import payload_keys
from proctor.codec import (
    KEY_ID,
    EncryptionCodec,
    LockedCodec,
    PayloadTampered,
    UnknownPayloadKey,
    is_encrypted,
)
from proctor.history.payloads import decode_events
from proctor.models import ActionRequest, ExecutionMode, ExecutionSpec
from proctor.payload_keys import KeyRing, PayloadKeyError, PayloadKeysMissing
from proctor.settings import STACK_FILE, ProctorSettings
from proctor.signing import AgentKey
from proctor.temporal import data_converter, encrypted_converter

SECRET = "jane.doe.secret@example.com"


def request_payloads() -> list[Payload]:
    """A typical governed action's request, as the pydantic converter writes it."""
    key = AgentKey.generate("codec-agent", "ed25519")
    request: ActionRequest = key.new_request(
        "send_email",
        {"customer_email": SECRET, "amount": 40},
        ExecutionSpec(mode=ExecutionMode.HANDLER),
    )
    return pydantic_data_converter.payload_converter.to_payloads([request, {"note": SECRET}])


async def test_round_trip_hides_the_payload_and_restores_it_exactly() -> None:
    codec = EncryptionCodec(KeyRing.in_memory())
    clear = request_payloads()
    sealed = await codec.encode(clear)
    assert len(sealed) == len(clear)
    for payload in sealed:
        assert is_encrypted(payload)
        assert payload.metadata[KEY_ID].decode() == codec.ring.current
        assert SECRET.encode() not in payload.SerializeToString()
        assert b"json/plain" not in payload.SerializeToString()  # the inner metadata too
    assert await codec.decode(sealed) == clear


async def test_every_encryption_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec(KeyRing.in_memory())
    clear = request_payloads()[:1]
    first, second = await codec.encode(clear), await codec.encode(clear)
    assert first[0].data[:12] != second[0].data[:12]
    assert first[0].data != second[0].data


async def test_clear_payloads_pass_through_decode() -> None:
    """Histories from before the ring existed stay readable."""
    clear = request_payloads()
    assert await EncryptionCodec(KeyRing.in_memory()).decode(clear) == clear


async def test_rotation_the_new_key_encrypts_and_every_key_decrypts(tmp_path: Path) -> None:
    ring_dir = tmp_path / "ring"
    first = payload_keys.create(ring_dir)
    old_codec = EncryptionCodec(payload_keys.load(ring_dir))
    clear = request_payloads()
    old = await old_codec.encode(clear)

    rotated = payload_keys.rotate(ring_dir)
    assert rotated.current != first.current and set(rotated.keys) == {
        first.current,
        rotated.current,
    }
    new_codec = EncryptionCodec(payload_keys.load(ring_dir))
    new = await new_codec.encode(clear)
    assert new[0].metadata[KEY_ID].decode() == rotated.current
    assert await new_codec.decode(old) == clear
    assert await new_codec.decode(new) == clear
    # A process started before the rotation reads the new key's payloads (re-reads its ring).
    assert await old_codec.decode(new) == clear
    assert old_codec.ring.current == rotated.current


async def test_a_payload_under_an_unknown_key_names_the_key() -> None:
    other = EncryptionCodec(KeyRing.in_memory())
    sealed = await other.encode(request_payloads())
    with pytest.raises(UnknownPayloadKey, match=other.ring.current):
        await EncryptionCodec(KeyRing.in_memory()).decode(sealed)
    with pytest.raises(UnknownPayloadKey, match=f"{other.ring.current}.*no payload keys"):
        await LockedCodec("/nowhere").decode(sealed)


@pytest.mark.parametrize(
    "tamper", ["flip_byte", "truncate", "swap_key_id", "cipher_name", "drop_key_id"]
)
async def test_tampered_ciphertext_is_refused(tamper: str) -> None:
    ring = KeyRing.in_memory(os.urandom(32), os.urandom(32))
    codec = EncryptionCodec(ring)
    payload = (await codec.encode(request_payloads()[:1]))[0]
    if tamper == "flip_byte":
        data = bytearray(payload.data)
        data[20] ^= 0x01
        payload.data = bytes(data)
    elif tamper == "truncate":
        payload.data = payload.data[:-1]
    elif tamper == "swap_key_id":  # the other key of the ring: authenticated data differs
        other = next(k for k in ring.keys if k != ring.current)
        payload.metadata[KEY_ID] = other.encode()
    elif tamper == "cipher_name":
        payload.metadata["encryption-cipher"] = b"AES128-GCM"
    else:
        del payload.metadata[KEY_ID]
    with pytest.raises(PayloadTampered):
        await codec.decode([payload])


async def test_the_converter_encrypts_failure_messages_too() -> None:
    converter = encrypted_converter(KeyRing.in_memory())
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"could not mail {SECRET}"), failure)
    assert SECRET.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert SECRET in str(decoded)


async def test_a_history_is_decrypted_event_by_event() -> None:
    """`proctor history` decodes every payload of every event, failure messages included."""
    converter = encrypted_converter(KeyRing.in_memory())
    assert converter.payload_codec is not None
    started = HistoryEvent(event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    started.workflow_execution_started_event_attributes.input.CopyFrom(
        Payloads(payloads=await converter.encode([{"customer_email": SECRET}]))
    )
    failed = HistoryEvent(event_id=2, event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    await converter.encode_failure(
        ApplicationError(f"no mailbox {SECRET}"),
        failed.activity_task_failed_event_attributes.failure,
    )
    events = [started, failed]
    assert all(SECRET.encode() not in e.SerializeToString() for e in events)

    clear = await decode_events(events, converter.payload_codec)
    start_input = clear[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert json.loads(start_input.data) == {"customer_email": SECRET}
    assert clear[1].activity_task_failed_event_attributes.failure.message == (
        f"no mailbox {SECRET}"
    )
    assert SECRET.encode() not in events[0].SerializeToString()  # the originals stay as stored


def test_key_files_are_private_and_checked(tmp_path: Path) -> None:
    ring_dir = tmp_path / "ring"
    ring = payload_keys.create(ring_dir)
    key_file = ring_dir / f"{ring.current}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(ring_dir.stat().st_mode) == 0o700
    assert len(key_file.read_bytes()) == 32

    with pytest.raises(PayloadKeyError, match="already there"):
        payload_keys.create(ring_dir)
    key_file.chmod(0o644)
    with pytest.raises(PayloadKeyError, match=r"readable by others \(mode 0644\)"):
        payload_keys.load(ring_dir)
    key_file.chmod(0o600)
    renamed = ring_dir / "20200101T000000Z-00000000.key"
    renamed.write_bytes(os.urandom(32))
    renamed.chmod(0o600)
    with pytest.raises(PayloadKeyError, match="do not match its name"):
        payload_keys.load(ring_dir)
    renamed.unlink()
    (ring_dir / "current").write_text("20200101T000000Z-11111111\n")
    with pytest.raises(PayloadKeyError, match="not in the ring"):
        payload_keys.load(ring_dir)
    with pytest.raises(PayloadKeysMissing, match="payload-key create"):
        payload_keys.load(tmp_path / "elsewhere")


def test_fail_closed_once_encryption_is_configured(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    plain = ProctorSettings(state_dir=state)
    assert isinstance(data_converter(plain).payload_codec, LockedCodec)  # nothing says so
    with pytest.raises(PayloadKeysMissing, match="requires them"):
        data_converter(plain, require_payload_keys=True)
    with pytest.raises(PayloadKeysMissing, match="PROCTOR_PAYLOAD_KEY_DIR is set"):
        data_converter(ProctorSettings(state_dir=state, payload_key_dir=tmp_path / "keys"))
    (state / STACK_FILE).write_text(
        json.dumps(
            {"temporal_address": "127.0.0.1:1", "database_url": "postgresql://x/y", "pid": 1}
        )
    )
    with pytest.raises(PayloadKeysMissing, match="embedded stack"):
        data_converter(plain)
    payload_keys.create(state / "payload-keys")
    assert isinstance(data_converter(plain).payload_codec, EncryptionCodec)
