"""The `proctor` command, run as a user runs it: a subprocess against real services."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from tests.helpers.cli import PROCTOR, arun, run
from tests.helpers.database import DatabaseFactory
from tests.helpers.harness import Harness


async def test_agent_create_writes_private_key_and_registers_public_key(
    cli_env: dict[str, str],
    tmp_path: Path,
    pool: asyncpg.Pool,
) -> None:
    key_path = tmp_path / "keys" / "cs.pem"
    done = await arun(
        [
            "agent",
            "create",
            "cli-agent-1",
            "--role",
            "support",
            "--owner",
            "lead@example.com",
            "--key-out",
            str(key_path),
            "--algorithm",
            "rsa-2048",
        ],
        cli_env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = AgentKey.load(key_path)
    record = await AgentStore(pool).get("cli-agent-1")
    assert record is not None and record.public_key_pem == key.public_key_pem
    assert "PRIVATE" not in record.public_key_pem

    again = await arun(
        [
            "agent",
            "create",
            "cli-agent-1",
            "--role",
            "support",
            "--owner",
            "lead@example.com",
            "--key-out",
            str(tmp_path / "other.pem"),
        ],
        cli_env,
        tmp_path,
    )
    assert again.returncode == 2
    assert again.stderr.strip() == "error: agent 'cli-agent-1' is already registered"
    assert not (tmp_path / "other.pem").exists()


@pytest.mark.parametrize(
    "agent_id, owner, message",
    [
        ("bad\x07id", "a@b.io", "invalid agent id"),
        ("x" * 10_000, "a@b.io", "invalid agent id"),
        ("fine-id", "not-an-email", "invalid owner"),
    ],
)
async def test_agent_create_refuses_bad_input_and_registers_nothing(
    cli_env: dict[str, str],
    tmp_path: Path,
    pool: asyncpg.Pool,
    agent_id: str,
    owner: str,
    message: str,
) -> None:
    done = await arun(
        [
            "agent",
            "create",
            agent_id,
            "--role",
            "r",
            "--owner",
            owner,
            "--key-out",
            str(tmp_path / "k.pem"),
        ],
        cli_env,
        tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {message}") and done.stderr.count("\n") == 1
    assert not (tmp_path / "k.pem").exists()
    assert await AgentStore(pool).get(agent_id) is None


async def test_approve_and_deny_from_the_command_line(
    cli_env: dict[str, str],
    tmp_path: Path,
    gov: Harness,
) -> None:
    env = {**cli_env, "PROCTOR_TASK_QUEUE": gov.task_queue}
    key = await gov.new_agent()
    calls: list[Any] = []
    approved = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"orderId": 1},
            handler=calls.append,
            request_id=f"cli-a-{key.agent_id}",
        )
    )
    denied = asyncio.create_task(
        gov.proctor.execute(
            key,
            "refund_requests",
            {"orderId": 2},
            handler=calls.append,
            request_id=f"cli-d-{key.agent_id}",
        )
    )
    for request_id in (f"cli-a-{key.agent_id}", f"cli-d-{key.agent_id}"):
        await gov.wait_for_stage(f"action-{request_id}", "awaiting_approval")

    for request_id in (f"cli-a-{key.agent_id}", f"cli-d-{key.agent_id}"):
        await gov.wait_until_listed(f"action-{request_id}")  # visibility is eventual
    listing = await arun(["approvals", "list"], env, tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert f"action-cli-a-{key.agent_id}" in listing.stdout
    assert "alice@example.com, bob@example.com" in listing.stdout

    # Each approver's vote key, registered in the worker's trusted directory.
    env["PROCTOR_APPROVAL_KEY_DIR"] = str(gov.vote_keys.root)
    keys = {}
    for who in ("owner@example.com", "alice@example.com", "bob@example.com"):
        keys[who] = str(tmp_path / f"{who}.pem")
        made = await arun(["approver", "key", "create", who, "--key-out", keys[who]], env, tmp_path)
        assert made.returncode == 0, made.stderr

    unsigned = await arun(
        ["approve", f"action-cli-a-{key.agent_id}", "--as", "alice@example.com"], env, tmp_path
    )
    assert unsigned.returncode == 2
    assert unsigned.stderr.startswith("error: no vote key for alice@example.com: give --key")
    unknown = await arun(
        ["approve", "action-nothing-here", "--key", keys["alice@example.com"]], env, tmp_path
    )
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.splitlines()[-1].startswith(
        "error: action-nothing-here: no such governed action"
    )
    not_hers = await arun(
        [
            "approve",
            f"action-cli-a-{key.agent_id}",
            "--as",
            "alice@example.com",
            "--key",
            keys["bob@example.com"],
        ],
        env,
        tmp_path,
    )
    assert not_hers.returncode == 2 and "not of alice@example.com" in not_hers.stderr

    refused = await arun(
        ["approve", f"action-cli-a-{key.agent_id}", "--key", keys["owner@example.com"]],
        env,
        tmp_path,
    )
    assert refused.returncode == 1
    assert "self-approval" in refused.stderr

    ok = await arun(
        [
            "approve",
            f"action-cli-a-{key.agent_id}",
            "--as",
            "alice@example.com",
            "--key",
            keys["alice@example.com"],
            "--note",
            "checked the order",
        ],
        env,
        tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    no = await arun(
        [
            "deny",
            f"action-cli-d-{key.agent_id}",
            "--key",
            keys["bob@example.com"],
            "--note",
            "duplicate refund",
        ],
        env,
        tmp_path,
    )
    assert no.returncode == 0, no.stderr

    assert (await asyncio.wait_for(approved, 30)).status is ActionStatus.COMPLETED
    assert (await asyncio.wait_for(denied, 30)).status is ActionStatus.REJECTED
    assert calls == [{"orderId": 1}]

    story = await arun(["approvals", "show", f"action-cli-a-{key.agent_id}"], env, tmp_path)
    assert story.returncode == 0, story.stderr
    lines = story.stdout.splitlines()
    assert lines[0] == f"action-cli-a-{key.agent_id}: closed"
    assert any("owner@example.com approve via cli: REFUSED (self-approval" in ln for ln in lines)
    assert any(
        "alice@example.com approve via cli: accepted" in ln and "checked the order" in ln
        for ln in lines
    )
    events = [ln.split()[2] for ln in lines[lines.index("audit:") + 1 :]]
    assert events == ["decided", "escalated", "vote", "vote", "trust_changed", "outcome"]


async def test_audit_checkpoint_and_verify(
    cli_env: dict[str, str], tmp_path: Path, make_database: DatabaseFactory
) -> None:
    from dataclasses import replace

    from proctor.audit.chain import sealed
    from proctor.models import AuditEvent
    from proctor.stores.audit_log import AuditLog

    dsn = await make_database()
    env = {**cli_env, "PROCTOR_DATABASE_URL": dsn}
    pool = await asyncpg.create_pool(dsn)
    log = AuditLog(pool)
    try:
        for i in range(5):
            await log.append(AuditEvent(idempotency_key=f"k{i}", event_type="t", payload={"i": i}))
        signed = await arun(["audit", "checkpoint"], env, tmp_path)
        assert signed.returncode == 0 and "signed checkpoint at seq 5" in signed.stdout
        intact = await arun(["audit", "verify"], env, tmp_path)
        assert intact.returncode == 0, intact.stderr
        assert "intact: 5 rows checked from the start" in intact.stdout
        assert "1 signed checkpoints matched, 1 in the external sink" in intact.stdout

        for i in range(5, 7):
            await log.append(AuditEvent(idempotency_key=f"k{i}", event_type="t", payload={"i": i}))
        again = await arun(["audit", "verify"], env, tmp_path)
        assert "2 rows checked from the verified checkpoint at seq 5" in again.stdout

        # Edit row 3 and recompute every hash after it: the links hold, the signature doesn't.
        rows = [row async for row in log.rows()]
        prev = rows[1].hash
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for row in rows[2:]:
                changed = replace(row, payload='{"i":9}') if row.seq == 3 else row
                fixed = sealed(replace(changed, prev_hash=prev))
                prev = fixed.hash
                await conn.execute(
                    "UPDATE audit_log SET payload = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                    row.seq,
                    fixed.payload,
                    fixed.prev_hash,
                    fixed.hash,
                )
        assert (await log.verify()).intact  # the chain alone cannot tell
        broken = await arun(["audit", "verify", "--full"], env, tmp_path)
        assert broken.returncode == 1
        assert "TAMPERED: first problem at seq 3: content edited" in broken.stderr
    finally:
        await pool.close()


def test_policy_check_reports_roles_no_approver_holds(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        "agent: a\npermissions:\n  escalate:\n    - {action: x, approvers: [role:cfo]}\n"
        "    - {action: y, approvers: [role:finance]}\n"
    )
    directory = tmp_path / "approvers.yaml"
    directory.write_text("approvers:\n  alice@example.com: {roles: [finance]}\n")
    done = run(["policy", "check", str(policies), "--approvers", str(directory)], {}, tmp_path)
    assert done.returncode == 0
    assert done.stderr == (
        "p.yaml:4: warning: permissions.escalate.0.approvers: no approver in the "
        "directory holds 'role:cfo' (see PROCTOR_APPROVERS_FILE)\n"
    )
    strict = ["policy", "check", "--strict", str(policies), "--approvers", str(directory)]
    assert run(strict, {}, tmp_path).returncode == 1
    directory.write_text("approvers:\n  alice@example.com: {roles: [finance, cfo]}\n")
    done = run(strict, {}, tmp_path)
    assert done.returncode == 0, done.stderr


def test_policy_check_reports_file_line_field(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "agent: a\npermissions:\n  allow:\n"
        "    - {action: x, colour: red}\n"
        "    - action: y\n      when: params.n >\n"
    )
    done = run(["policy", "check", str(tmp_path)], {}, tmp_path)
    assert done.returncode == 1
    assert done.stderr == "p.yaml:4: error: permissions.allow.0.colour: unknown field\n"
    (tmp_path / "p.yaml").write_text(
        "agent: a\npermissions:\n  allow:\n    - action: y\n      when: params.n > 'x' + 1\n"
    )
    done = run(["policy", "check", str(tmp_path)], {}, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("p.yaml:5: error: permissions.allow.0.when: expression:1:")
    assert "no matching overload" in done.stderr
    shipped = run(["policy", "check", str(Path(__file__).parents[3] / "policies")], {}, tmp_path)
    assert shipped.returncode == 0 and "OK" in shipped.stdout


@pytest.mark.parametrize(
    "env, words",
    [
        ({"PROCTOR_DATABASE_URL": ""}, "no database: set PROCTOR_DATABASE_URL"),
        (
            {"PROCTOR_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "cannot connect to Postgres at postgresql://nobody@127.0.0.1:1/none",
        ),
    ],
)
def test_unreachable_database_is_one_clear_line(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    clean = {k: v for k, v in env.items() if v}
    environment = {k: v for k, v in os.environ.items() if k != "PROCTOR_DATABASE_URL"}
    done = subprocess.run(
        [PROCTOR, "audit", "verify"],
        env={**environment, **clean, "PROCTOR_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {words}") and done.stderr.count("\n") == 1


def test_unreachable_temporal_is_one_clear_line(tmp_path: Path) -> None:
    done = run(
        ["approvals", "list"],
        {"TEMPORAL_ADDRESS": "127.0.0.1:1", "PROCTOR_STATE_DIR": str(tmp_path)},
        tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot connect to Temporal at 127.0.0.1:1")
    assert done.stderr.count("\n") == 1


async def test_worker_refuses_an_unmigrated_database(
    tmp_path: Path, postgres_server_dsn: str, dev_server: WorkflowEnvironment
) -> None:
    from proctor.db import ensure_database, with_database

    name = f"unmigrated_{os.getpid()}"
    await ensure_database(postgres_server_dsn, name)
    done = await arun(
        ["worker"],
        {
            "PROCTOR_DATABASE_URL": with_database(postgres_server_dsn, name),
            "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "PROCTOR_POLICY_DIR": str(Path(__file__).parents[3] / "policies"),
        },
        tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: the database misses migrations 0001_init.sql")
    assert done.stderr.strip().endswith("run `proctor db migrate`")
    assert done.stderr.count("\n") == 1


def test_policy_test_and_explain_commands(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[3] / "policies"
    passing = run(["policy", "test", str(shipped)], {}, tmp_path)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.stdout.strip().endswith("8 passed, 0 failed")

    (tmp_path / "p.yaml").write_text("permissions: {deny: ['delete:*']}\n")
    (tmp_path / "p.test.yaml").write_text(
        "tests:\n  - name: deletes are fine\n"
        "    agent: {id: a}\n    action: delete:x\n"
        "    expect: {effect: allow}\n"
    )
    failing = run(["policy", "test", str(tmp_path)], {}, tmp_path)
    assert failing.returncode == 1
    assert "FAIL p.test.yaml:2: deletes are fine" in failing.stdout
    assert "effect: expected allow, got deny" in failing.stdout

    explained = run(
        [
            "policy",
            "explain",
            "customer-service-agent",
            "refund_requests",
            "--role",
            "support",
            "--param",
            "amount=600",
            "--dir",
            str(shipped),
        ],
        {},
        tmp_path,
    )
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith("ESCALATE by refunds-need-approval")
    assert "action does not match 'delete:*'" in explained.stdout


async def test_policy_diff_backtests_a_change_over_the_audit_log(
    cli_env: dict[str, str],
    tmp_path: Path,
    make_database: DatabaseFactory,
    dev_server: WorkflowEnvironment,
) -> None:
    import shutil

    from proctor.db import connect_pool
    from tests.helpers.harness import POLICY_DIR, harness

    dsn = await make_database()
    pool = await connect_pool(dsn)
    try:
        async with harness(dev_server.client, pool) as gov:
            key = await gov.new_agent()
            for action in ("read:orders", "notify:customer", "delete:customer"):
                await gov.proctor.execute(key, action, {"id": 1}, handler=lambda p: None)
    finally:
        await pool.close()
    new = tmp_path / "new"
    shutil.copytree(POLICY_DIR, new)
    testers = new / "testers.yaml"
    testers.write_text(testers.read_text().replace('    - "read:*"\n', ""))

    done = await arun(
        ["policy", "diff", str(POLICY_DIR), str(new), "--exit-code"],
        {**cli_env, "PROCTOR_DATABASE_URL": dsn},
        tmp_path,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == (
        f"{key.agent_id} read:orders {{'id': 1}}: allow (testers:allow:read:*) "
        "-> deny (default-deny)"
    )
    assert lines[-1].startswith("1 of 3 past requests change effect")


def _write_public(path: Path, key: PrivateKeyTypes) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("garbage", "malformed public key PEM"),
        ("rsa-1024", "RSA key of 1024 bits is too small"),
        ("ec", "unsupported public key type"),
    ],
)
async def test_register_refuses_unusable_public_keys(
    cli_env: dict[str, str],
    tmp_path: Path,
    pool: asyncpg.Pool,
    kind: str,
    message: str,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    path = tmp_path / "pub.pem"
    if kind == "garbage":
        path.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    elif kind == "rsa-1024":
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
        _write_public(path, weak)
    else:
        _write_public(path, ec.generate_private_key(ec.SECP256R1()))
    agent_id = f"byok-{kind}"
    done = await arun(
        [
            "agent",
            "register",
            agent_id,
            "--role",
            "r",
            "--owner",
            "o@x.io",
            "--public-key",
            str(path),
        ],
        cli_env,
        tmp_path,
    )
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert await AgentStore(pool).get(agent_id) is None


async def test_register_show_rotate_suspend(
    cli_env: dict[str, str], tmp_path: Path, gov: Harness
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    env = {**cli_env, "PROCTOR_TASK_QUEUE": gov.task_queue}
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = _write_public(tmp_path / "toolkit-identity.pub", private)
    agent_id = f"byok-{os.getpid()}"
    done = await arun(
        [
            "agent",
            "register",
            agent_id,
            "--role",
            "tester",
            "--owner",
            "o@example.com",
            "--public-key",
            str(public),
        ],
        env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    old = AgentKey(agent_id, private)
    assert (await gov.proctor.execute(old, "read:x", {}, handler=lambda p: 1)).ok

    rotated = await arun(
        ["agent", "rotate-key", agent_id, "--key-out", str(tmp_path / "new.pem"), "--grace", "0s"],
        env,
        tmp_path,
    )
    assert rotated.returncode == 0, rotated.stderr
    new = AgentKey.load(tmp_path / "new.pem")
    refused = await gov.proctor.execute(old, "read:x", {}, handler=lambda p: 1)
    assert refused.decision.rule_id == "identity:retired_key"  # its own, retired: provable
    assert (await gov.proctor.execute(new, "read:x", {}, handler=lambda p: 1)).ok

    shown = await arun(["agent", "show", agent_id], env, tmp_path)
    assert shown.returncode == 0 and "status active, trust 91" in shown.stdout
    assert "previous key sha256:" in shown.stdout

    suspended = await arun(
        ["agent", "suspend", agent_id, "--reason", "investigating", "--as", "sec@example.com"],
        env,
        tmp_path,
    )
    assert suspended.returncode == 0, suspended.stderr
    outcome = await gov.proctor.execute(new, "read:x", {}, handler=lambda p: 1)
    assert outcome.decision.rule_id == "identity:suspended_agent"
    events = [
        r.event_type
        for r in await gov.audit.recent_of_type("key_rotated", 1000)
        if r.agent_id == agent_id
    ]
    assert events == ["key_rotated"]


async def test_encrypted_key_and_reinstatement_from_the_command_line(
    cli_env: dict[str, str],
    tmp_path: Path,
    gov: Harness,
) -> None:
    from proctor.models import AgentStatus
    from proctor.signing import AgentKeyError

    env = {
        **cli_env,
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_KEY_PASSPHRASE": "correct horse",
    }
    agent_id = f"cli-reinstate-{os.getpid()}"
    key_path = tmp_path / "enc.pem"
    created = await arun(
        [
            "agent",
            "create",
            agent_id,
            "--role",
            "tester",
            "--owner",
            "owner@example.com",
            "--key-out",
            str(key_path),
        ],
        env,
        tmp_path,
    )
    assert created.returncode == 0, created.stderr
    with pytest.raises(AgentKeyError):
        AgentKey.load(key_path)
    key = AgentKey.load(key_path, passphrase=b"correct horse")

    await arun(
        ["agent", "suspend", agent_id, "--reason", "test", "--as", "sec@example.com"], env, tmp_path
    )
    asked = await arun(
        [
            "agent",
            "reinstate",
            agent_id,
            "--reason",
            "fixed",
            "--as",
            "bob@example.com",
            "--score",
            "75",
        ],
        env,
        tmp_path,
    )
    assert asked.returncode == 0, asked.stderr
    workflow_id = asked.stdout.split(" waits in ")[1].split()[0]
    # As `proctor up` does: each approver's key in the state dir, trusted by the worker.
    from proctor.approvals.keys import provision_approver_keys

    env["PROCTOR_APPROVAL_KEY_DIR"] = str(gov.vote_keys.root)
    provision_approver_keys(
        ["bob@example.com", "owner@example.com"], Path(env["PROCTOR_STATE_DIR"]), gov.vote_keys
    )
    by_requester = await arun(["approve", workflow_id, "--as", "bob@example.com"], env, tmp_path)
    assert by_requester.returncode == 1
    assert "the requester cannot decide their own request" in by_requester.stderr
    approved = await arun(["approve", workflow_id, "--as", "owner@example.com"], env, tmp_path)
    assert approved.returncode == 0, approved.stderr
    outcome = await gov.operator.reinstatement_outcome(workflow_id)
    assert outcome.status == "reinstated"
    record = await AgentStore(gov.pool).get(agent_id)
    assert record is not None
    assert (record.info.status, record.info.trust_score) == (AgentStatus.ACTIVE, 75)
    assert (await gov.proctor.execute(key, "read:x", {}, handler=lambda p: 1)).ok


async def test_audit_privacy_retention_query_and_report_commands(
    cli_env: dict[str, str],
    tmp_path: Path,
    make_database: DatabaseFactory,
) -> None:
    from proctor.audit.erasure import SubjectKeys
    from proctor.audit.keys import LedgerKeys
    from proctor.audit.redaction import PayloadProtector
    from proctor.audit.rules import AuditRules
    from proctor.models import AuditEvent
    from proctor.stores.audit_log import AuditLog

    dsn = await make_database()
    state = Path(cli_env["PROCTOR_STATE_DIR"])
    env = {**cli_env, "PROCTOR_DATABASE_URL": dsn}
    keys = LedgerKeys.load_or_create(state / "keys")  # as the worker would
    rules = AuditRules(
        sensitive_fields=frozenset({"iban"}),
        personal_fields=frozenset({"email", "name"}),
        data_subjects=("email",),
    )
    pool = await asyncpg.create_pool(dsn)
    try:
        log = AuditLog(
            pool,
            protector=PayloadProtector(
                lambda: rules, keys.redaction_hmac, SubjectKeys(pool, keys.subject_kek)
            ),
        )
        for i, who in enumerate(("jane@example.com", "john@example.com")):
            await log.append(
                AuditEvent(
                    idempotency_key=f"k{i}",
                    event_type="decided",
                    agent_id="ag",
                    action="refund",
                    payload={
                        "params": {
                            "email": who,
                            "name": who.split("@")[0],
                            "iban": "DE89370400440532013000",
                        },
                        "decision": {"effect": "allow"},
                    },
                )
            )

        found = await arun(["audit", "find-value", "DE89370400440532013000"], env, tmp_path)
        assert found.returncode == 0 and "2 row(s)" in found.stderr

        shown = await arun(
            ["audit", "query", "--agent", "ag", "--format", "json", "--reveal"], env, tmp_path
        )
        entries = json.loads(shown.stdout)["entries"]
        assert [e["payload"]["params"]["name"] for e in entries] == ["jane", "john"]

        gone = await arun(
            ["audit", "forget", "jane@example.com", "--by", "dpo@example.com"], env, tmp_path
        )
        assert gone.returncode == 0 and "1 audit row(s) now read as erased" in gone.stdout
        shown = await arun(
            ["audit", "query", "--effect", "allow", "--format", "csv", "--reveal"], env, tmp_path
        )
        lines = shown.stdout.strip().splitlines()
        assert lines[0].startswith("seq,recorded_at") and len(lines) == 3
        assert "[erased]" in lines[1] and "jane" not in shown.stdout and "john" in lines[2]

        held = await arun(
            ["audit", "hold", "place", "--reason", "case 17", "--by", "counsel"], env, tmp_path
        )
        assert held.returncode == 0 and "legal hold 1 placed" in held.stdout
        assert (await arun(["audit", "checkpoint"], env, tmp_path)).returncode == 0
        refused = await arun(
            ["audit", "prune", "--retention-days", "1", "--by", "ops"], env, tmp_path
        )
        assert refused.returncode == 1 and "legal hold 1" in refused.stderr
        plan = await arun(
            ["audit", "prune", "--retention-days", "1", "--dry-run", "--by", "ops"], env, tmp_path
        )
        assert "nothing to prune" in plan.stdout  # nothing is a day old

        report = await arun(
            [
                "audit",
                "report",
                "--from",
                "2020-01-01",
                "--to",
                "2100-01-01",
                "--template",
                "gdpr",
                "--format",
                "md",
            ],
            env,
            tmp_path,
        )
        assert report.returncode == 0, report.stderr
        assert "Art. 17 erasure" in report.stdout and "| subjects erased | 1 |" in report.stdout
        assert (await arun(["audit", "verify"], env, tmp_path)).returncode == 0
    finally:
        await pool.close()


async def test_db_migrate_grants_a_workers_login_append_and_read_only(
    tmp_path: Path,
    make_database: DatabaseFactory,
) -> None:
    from proctor.db import with_user

    dsn = await make_database()
    done = await arun(
        ["db", "migrate", "--app-login", "proctor_cli_worker"],
        {"PROCTOR_DATABASE_URL": dsn},
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "proctor_cli_worker may append to and read the ledger" in done.stdout
    worker = await asyncpg.connect(with_user(dsn, "proctor_cli_worker"))
    try:
        await worker.execute(
            "INSERT INTO request_nonces (agent_id, nonce, request_id) VALUES ('a', 'n', 'r')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.execute("DELETE FROM audit_log")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.execute("DELETE FROM audit_subject_keys")
    finally:
        await worker.close()
