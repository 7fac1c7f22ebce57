"""`proctor payload-key create|rotate|list` as an operator runs them."""

from __future__ import annotations

import stat
from pathlib import Path

from proctor import payload_keys
from tests.helpers.cli import run


def test_create_rotate_list(tmp_path: Path) -> None:
    ring_dir = tmp_path / "ring"
    env = {"PROCTOR_PAYLOAD_KEY_DIR": str(ring_dir), "PROCTOR_STATE_DIR": str(tmp_path)}

    missing = run(["payload-key", "list"], env, tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"error: {ring_dir}: no payload keys")
    assert run(["payload-key", "rotate"], env, tmp_path).returncode == 2  # nothing to rotate

    created = run(["payload-key", "create"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    first = payload_keys.load(ring_dir).current
    assert f"created payload key {first}" in created.stdout
    assert stat.S_IMODE((ring_dir / f"{first}.key").stat().st_mode) == 0o600
    again = run(["payload-key", "create"], env, tmp_path)
    assert again.returncode == 2 and "already there" in again.stderr
    setup_job = run(["payload-key", "create", "--if-missing"], env, tmp_path)
    assert setup_job.returncode == 0 and f"already in {ring_dir}/ (current {first})" in (
        setup_job.stdout
    )
    assert set(payload_keys.load(ring_dir).keys) == {first}

    rotated = run(["payload-key", "rotate"], env, tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    ring = payload_keys.load(ring_dir)
    assert ring.current != first and set(ring.keys) == {first, ring.current}
    assert "1 older key(s) still decrypt" in rotated.stdout

    listed = run(["payload-key", "list"], env, tmp_path)
    assert listed.returncode == 0
    lines = sorted(line.split()[0:2] for line in listed.stdout.splitlines()[1:])
    assert lines == [["*", ring.current], [first, "created"]]
    key_hex = {key.hex() for key in ring.keys.values()}
    assert not any(k in listed.stdout + rotated.stdout + created.stdout for k in key_hex)
