"""History without secrets, on the real dev server, worker and Postgres: what an agent sends
is ciphertext in Temporal (a client without the codec reads none of it), while `proctor
history` and `proctor replay` with the key ring read it all."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from proctor import Client, payload_keys
from proctor.history.payloads import decode_history
from proctor.temporal import connect_temporal, encrypted_converter
from tests.helpers.cli import arun
from tests.helpers.harness import harness


def held_in(history: WorkflowHistory, secret: str) -> bool:
    """Whether any event carries `secret` in clear: protobuf keeps strings and bytes as they
    are, so a payload, a failure message or a memo holding it shows in the serialized event."""
    return any(secret.encode() in event.SerializeToString() for event in history.events)


async def encrypted_actions(temporal: TemporalClient, pool: asyncpg.Pool, secret: str) -> list[str]:
    """An agent asks for an action carrying `secret` twice: a handler that echoes it, and a
    durable tool whose first attempt fails quoting it (the failure is kept in history)."""
    async with harness(temporal, pool) as gov:
        key = await gov.new_agent()
        handled = await gov.proctor.execute(
            key,
            "read:customer",
            {"customer_email": secret},
            handler=lambda params: {"greeting": f"hello {params['customer_email']}"},
            request_id=f"secret-handler-{uuid.uuid4().hex[:8]}",
        )
        assert handled.ok and secret in json.dumps(handled.result)

        tools = Client(temporal, task_queue=gov.task_queue)
        attempts: list[int] = []

        @tools.tool("tool:mail_customer")
        async def mail(params: dict[str, Any]) -> dict[str, Any]:
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError(f"mailbox {params['customer_email']} did not answer")
            return {"sent_to": params["customer_email"]}

        async with tools.agent_worker(key.agent_id):
            tooled = await tools.execute(
                key,
                "tool:mail_customer",
                {"customer_email": secret},
                request_id=f"secret-tool-{uuid.uuid4().hex[:8]}",
            )
        assert tooled.ok and len(attempts) == 2
        return [handled.workflow_id, tooled.workflow_id]


async def test_history_holds_no_clear_secret_but_the_keys_read_it(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool, database_dsn: str, tmp_path: Path
) -> None:
    ring_dir = tmp_path / "payload-keys"
    ring = payload_keys.create(ring_dir)
    address = dev_server.client.service_client.config.target_host
    encrypted = await connect_temporal(address, converter=encrypted_converter(ring))
    secret = f"jane.{uuid.uuid4().hex[:10]}@example.com"
    workflow_ids = await encrypted_actions(encrypted, pool, secret)

    plain = dev_server.client  # pydantic converter, no codec: what the Temporal UI sees
    codec = encrypted.data_converter.payload_codec
    for workflow_id in workflow_ids:
        raw = await plain.get_workflow_handle(workflow_id).fetch_history()
        assert not held_in(raw, secret), workflow_id
        assert secret not in raw.to_json()
        # The same check does find it once decrypted: it would catch a clear copy.
        assert held_in(await decode_history(raw, codec), secret), workflow_id
    # The tool's failed first attempt is in history (its message quoting the secret), sealed.
    tool_history = await plain.get_workflow_handle(workflow_ids[1]).fetch_history()
    assert held_in(await decode_history(tool_history, codec), f"mailbox {secret} did not answer")
    with pytest.raises(Exception, match="encrypted"):
        await plain.get_workflow_handle(workflow_ids[0]).result()

    env = {
        "PROCTOR_DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": address,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_PAYLOAD_KEY_DIR": str(ring_dir),
    }
    handler_id, tool_id = workflow_ids
    shown = await arun(["history", handler_id], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"asks read:customer {{'customer_email': '{secret}'}}" in shown.stdout
    tool_story = await arun(["history", tool_id], env, tmp_path)
    assert tool_story.returncode == 0, tool_story.stderr
    assert f"'sent_to': '{secret}'" in tool_story.stdout

    exported = await arun(["history", "export", tool_id], env, tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert secret not in exported.stdout
    fixture = tmp_path / "tool.json"
    fixture.write_text(exported.stdout)
    assert not held_in(WorkflowHistory.from_json(tool_id, exported.stdout), secret)
    replayed = await arun(["replay", "--file", str(fixture)], env, tmp_path)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 replayed, 0 non-deterministic" in replayed.stdout


async def test_without_the_ring_nothing_is_read(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool, database_dsn: str, tmp_path: Path
) -> None:
    ring = payload_keys.create(tmp_path / "payload-keys")
    address = dev_server.client.service_client.config.target_host
    encrypted = await connect_temporal(address, converter=encrypted_converter(ring))
    secret = f"joe.{uuid.uuid4().hex[:10]}@example.com"
    handler_id, _ = await encrypted_actions(encrypted, pool, secret)
    base = {
        "PROCTOR_DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": address,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
    }

    # A ring is configured but absent: the command refuses to run at all.
    absent = {**base, "PROCTOR_PAYLOAD_KEY_DIR": str(tmp_path / "absent")}
    refused = await arun(["history", handler_id], absent, tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: {tmp_path / 'absent'}: no payload keys")

    # Another deployment's ring: the unknown key is named, nothing is shown.
    other_dir = tmp_path / "other-keys"
    payload_keys.create(other_dir)
    other = {**base, "PROCTOR_PAYLOAD_KEY_DIR": str(other_dir)}
    wrong = await arun(["history", handler_id], other, tmp_path)
    assert wrong.returncode == 2
    assert f"payload encrypted under key '{ring.current}'" in wrong.stderr
    assert secret not in wrong.stdout + wrong.stderr

    fixture = tmp_path / "handler.json"
    fixture.write_text((await arun(["history", "export", handler_id], other, tmp_path)).stdout)
    replayed = await arun(["replay", "--file", str(fixture)], other, tmp_path)
    assert replayed.returncode == 2  # not judged (exit 1 would say: non-deterministic)
    assert f"payload encrypted under key '{ring.current}'" in replayed.stderr
    assert secret not in replayed.stdout + replayed.stderr

    # Nothing configured: the first encrypted payload stops it, naming its key.
    blind = await arun(["history", handler_id], base, tmp_path)
    assert blind.returncode == 2
    assert (
        f"payload encrypted under key '{ring.current}', but this process has no payload "
        "keys" in blind.stderr
    )
    assert secret not in blind.stdout + blind.stderr
