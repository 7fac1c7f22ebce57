"""`proctor audit verify` as an auditor runs it, against an attacker who owns the database and
can write the checkpoint sink, but not the worker's key directory or the verifier's pins."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from proctor.audit.keys import LedgerKeys, public_pem
from proctor.stores.audit_log import AuditLog
from tests.helpers.cli import arun
from tests.helpers.tamper import (
    as_superuser,
    fill,
    resign_everything,
    rewrite,
    rows_from,
    write_sink_lines,
)


@pytest.fixture
def env(private_database: tuple[asyncpg.Pool, str], tmp_path: Path) -> dict[str, str]:
    """Postgres only (no Temporal): the audit commands never need it."""
    return {
        "PROCTOR_DATABASE_URL": private_database[1],
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_AUDIT_CHECKPOINT_ROWS": "10",
    }


@pytest.fixture
async def signed(
    private_database: tuple[asyncpg.Pool, str], env: dict[str, str], tmp_path: Path
) -> asyncpg.Pool:
    """30 rows, checkpoints at 10, 20, 30 signed by `proctor audit checkpoint`."""
    pool = private_database[0]
    await fill(AuditLog(pool), "k", 30)
    done = await arun(["audit", "checkpoint"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("signed checkpoint at seq") == 3
    return pool


def sink_dir(env: dict[str, str]) -> Path:
    return Path(env["PROCTOR_STATE_DIR"]) / "audit-checkpoints"


def a_key(path: Path) -> Path:
    keys = LedgerKeys.generate()
    path.write_text(public_pem(keys.signing.public_key()))
    return path


async def genuine_key(env: dict[str, str], tmp_path: Path) -> Path:
    """The worker's public key, exported the way an operator pins it on another machine."""
    done = await arun(["audit", "checkpoint", "--print-key"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    path = tmp_path / "genuine.pem"
    path.write_text(done.stdout)
    return path


async def test_a_rewrite_resigned_with_a_key_dropped_in_the_sink_is_tampered_in_every_mode(
    signed: asyncpg.Pool,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    genuine = await genuine_key(env, tmp_path)
    rows = await rows_from(signed, 1)
    await rewrite(signed, 1, [replace(r, actor="mallory") for r in rows])
    await resign_everything(signed, sink_dir(env), LedgerKeys.generate(), 10)

    for flags in ([], ["--full"], ["--public-key", str(genuine)], ["--trusted-key", str(genuine)]):
        done = await arun(["audit", "verify", *flags], env, tmp_path)
        assert done.returncode == 1, (flags, done.stdout)
        assert "TAMPERED" in done.stderr and "checkpoint forged" in done.stderr, flags
        assert "sink forged" in done.stderr, flags


async def test_plain_verify_does_not_vouch_for_rows_it_did_not_reread(
    signed: asyncpg.Pool,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    clean = await arun(["audit", "verify"], env, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "intact: 30 rows checked from the start" in clean.stdout

    await as_superuser(signed, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 15")
    plain = await arun(["audit", "verify"], env, tmp_path)
    assert "intact" not in plain.stdout
    assert "0 rows since the verified checkpoint at seq 30" in plain.stdout
    assert "not re-read: rows 1..30" in plain.stdout and "--full" in plain.stdout

    full = await arun(["audit", "verify", "--full"], env, tmp_path)
    assert full.returncode == 1
    assert "TAMPERED: first problem at seq 15: content edited" in full.stderr
    as_json = await arun(["audit", "verify", "--full", "--json"], env, tmp_path)
    first = json.loads(as_json.stdout)["findings"][0]
    assert (first["seq"], first["kind"]) == (15, "content_edited")


async def test_new_rows_are_checked_and_the_rest_is_named_as_skipped(
    signed: asyncpg.Pool,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    assert (await arun(["audit", "verify"], env, tmp_path)).returncode == 0
    await fill(AuditLog(signed), "later", 2)
    again = await arun(["audit", "verify"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert (
        "intact from seq 31: 2 rows checked from the verified checkpoint at seq 30" in again.stdout
    )
    assert "not re-read: rows 1..30" in again.stdout
    assert "rows 31..32 are not covered by a signed checkpoint yet" in again.stdout
    report = json.loads((await arun(["audit", "verify", "--json"], env, tmp_path)).stdout)
    assert report["not_reread"] == [1, 30] and report["unsigned_from"] == 31


async def test_the_sink_emptied_is_tampered(
    signed: asyncpg.Pool, env: dict[str, str], tmp_path: Path
) -> None:
    write_sink_lines(sink_dir(env), [])
    done = await arun(["audit", "verify"], env, tmp_path)
    assert done.returncode == 1
    assert "first problem at seq 10: sink missing" in done.stderr


async def test_trusted_keys_replace_the_default_rather_than_add(
    signed: asyncpg.Pool,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    other = a_key(tmp_path / "other.pem")
    done = await arun(["audit", "verify", "--trusted-key", str(other)], env, tmp_path)
    assert done.returncode == 1 and "checkpoint forged" in done.stderr

    pinned = {**env, "PROCTOR_AUDIT_TRUSTED_KEYS": str(other)}
    done = await arun(["audit", "verify"], pinned, tmp_path)
    assert done.returncode == 1 and "checkpoint forged" in done.stderr

    genuine = await genuine_key(env, tmp_path)
    elsewhere = {
        **env,
        "PROCTOR_AUDIT_KEY_DIR": str(tmp_path / "no-keys-here"),
        "PROCTOR_AUDIT_TRUSTED_KEYS": f"{other},{genuine}",
    }
    done = await arun(["audit", "verify", "--full"], elsewhere, tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("case", ["missing", "not a key", "setting"])
async def test_a_bad_trusted_key_is_one_line(
    signed: asyncpg.Pool, env: dict[str, str], tmp_path: Path, case: str
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    args, extra, words = {
        "missing": (
            ["--trusted-key", str(tmp_path / "nope.pem")],
            {},
            f"--trusted-key {tmp_path / 'nope.pem'}: no such file",
        ),
        "not a key": (["--trusted-key", str(junk)], {}, f"{junk}: not a PEM public key"),
        "setting": (
            [],
            {"PROCTOR_AUDIT_TRUSTED_KEYS": f" {tmp_path / 'gone.pem'} "},
            f"PROCTOR_AUDIT_TRUSTED_KEYS {tmp_path / 'gone.pem'}: no such file",
        ),
    }[case]
    done = await arun(["audit", "verify", *args], {**env, **extra}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {words}") and done.stderr.count("\n") == 1


async def test_no_trusted_key_at_all_is_one_line(
    signed: asyncpg.Pool, env: dict[str, str], tmp_path: Path
) -> None:
    done = await arun(
        ["audit", "verify"], {**env, "PROCTOR_AUDIT_KEY_DIR": str(tmp_path / "empty")}, tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: no trusted checkpoint key")
    assert done.stderr.count("\n") == 1


async def test_a_fresh_ledger_needs_no_key(
    private_database: tuple[asyncpg.Pool, str], env: dict[str, str], tmp_path: Path
) -> None:
    await fill(AuditLog(private_database[0]), "k", 3)
    done = await arun(["audit", "verify"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "intact: 3 rows checked from the start" in done.stdout
    assert "rows 1..3 are not covered by a signed checkpoint yet" in done.stdout
