from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proctor.canonical import canonical_bytes
from proctor.models import ExecutionMode, ExecutionSpec
from proctor.signing import AgentKey, AgentKeyError, KeyAlgorithm, verify_request

SPEC = ExecutionSpec(mode=ExecutionMode.HANDLER)


@pytest.mark.parametrize("algorithm", ["rsa-2048", "ed25519"])
def test_signature_verifies_and_any_edit_breaks_it(algorithm: KeyAlgorithm) -> None:
    key = AgentKey.generate("agent-1", algorithm)
    request = key.new_request("refund_requests", {"orderId": 1, "amount": 5.5}, SPEC)
    assert verify_request(request, key.public_key_pem)

    for change in (
        {"params": {"orderId": 1, "amount": 5.51}},
        {"action": "refund_all"},
        {"nonce": "x" * 20},
        {"request_id": "other"},
    ):
        assert not verify_request(request.model_copy(update=change), key.public_key_pem)


def test_key_order_of_params_does_not_matter() -> None:
    key = AgentKey.generate("agent-1")
    request = key.new_request("a", {"b": 1, "a": {"y": 2, "x": 1}}, SPEC)
    reordered = request.model_copy(update={"params": {"a": {"x": 1, "y": 2}, "b": 1}})
    assert verify_request(reordered, key.public_key_pem)


def test_missing_or_garbage_signature_never_verifies() -> None:
    key = AgentKey.generate("agent-1")
    request = key.new_request("a", {}, SPEC)
    assert not verify_request(request.model_copy(update={"signature": ""}), key.public_key_pem)
    assert not verify_request(request.model_copy(update={"signature": "!!"}), key.public_key_pem)


def test_wrong_key_does_not_verify() -> None:
    key, other = AgentKey.generate("agent-1"), AgentKey.generate("agent-1")
    assert not verify_request(key.new_request("a", {}, SPEC), other.public_key_pem)


def test_signing_for_another_agent_is_refused() -> None:
    key, other = AgentKey.generate("agent-1"), AgentKey.generate("agent-2")
    with pytest.raises(AgentKeyError, match="belongs to"):
        key.sign(other.new_request("a", {}, SPEC))


@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_save_and_load_round_trip_with_private_mode(
    tmp_path: Path, passphrase: bytes | None
) -> None:
    key = AgentKey.generate("cs-agent", "rsa-2048")
    path = key.save(tmp_path / "keys" / "cs.pem", passphrase=passphrase)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = AgentKey.load(path, passphrase=passphrase)
    assert loaded.agent_id == "cs-agent"
    assert loaded.public_key_pem == key.public_key_pem
    with pytest.raises(FileExistsError):
        key.save(path)


def test_bad_key_files_give_clear_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "bad.pem"
    garbage.write_text("Proctor-Agent: x\n-----BEGIN PRIVATE KEY-----\nnope\n")
    with pytest.raises(AgentKeyError, match="malformed"):
        AgentKey.load(garbage)
    with pytest.raises(AgentKeyError, match="cannot read"):
        AgentKey.load(tmp_path / "missing.pem")
    encrypted = AgentKey.generate("x").save(tmp_path / "enc.pem", passphrase=b"pw")
    with pytest.raises(AgentKeyError):
        AgentKey.load(encrypted)
    with pytest.raises(AgentKeyError):
        AgentKey.load(encrypted, passphrase=b"wrong")


def test_a_request_naming_no_executor_signs_the_very_bytes_it_did_before_executors() -> None:
    request = AgentKey.generate("agent-1").new_request(
        "a", {"n": 1}, SPEC, request_id="r1", requested_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert canonical_bytes(request.signing_payload()) == (
        b'{"action":"a","agent_id":"agent-1","execution":{"max_attempts":3,"mode":"handler",'
        b'"task_queue":null,"timeout_seconds":3600},"nonce":"' + request.nonce.encode() + b'",'
        b'"params":{"n":1},"request_id":"r1","requested_at":"2026-01-02T00:00:00Z"}'
    )


def test_the_execution_service_is_signed_into_the_request() -> None:
    key = AgentKey.generate("agent-1")
    spec = ExecutionSpec(mode=ExecutionMode.HANDLER, executor="refund-api")
    request = key.new_request("a", {}, spec)
    assert verify_request(request, key.public_key_pem)
    for executor in ("other-api", None):
        swapped = spec.model_copy(update={"executor": executor})
        assert not verify_request(
            request.model_copy(update={"execution": swapped}), key.public_key_pem
        )


def test_only_handler_mode_names_an_execution_service() -> None:
    with pytest.raises(ValueError, match="executor= is for handler mode"):
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue="q", executor="refund-api")
