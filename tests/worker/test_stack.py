"""`proctor up` + `proctor demo` as a user runs them: the whole embedded stack, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gone(process: psutil.Process) -> bool:
    """Exited (a zombie awaiting a reaper that is not us counts as exited)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_up_demo_and_clean_stop(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "PROCTOR_STATE_DIR": str(state),
           "PROCTOR_TEMPORAL_PORT": str(free_port()),
           "PROCTOR_TEMPORAL_UI_PORT": str(free_port())}
    for name in ("PROCTOR_DATABASE_URL", "TEMPORAL_ADDRESS"):
        env.pop(name, None)
    log = (tmp_path / "up.log").open("w+")
    stack = subprocess.Popen([str(BIN / "proctor"), "up"], cwd=REPO, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not (state / "stack.json").exists():
            assert stack.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        children = psutil.Process(stack.pid).children(recursive=True)
        assert any("temporal" in p.name() for p in children)

        demo = subprocess.run([str(BIN / "proctor"), "demo"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "COMPLETED by rule customer-service:allow:read:*" in demo.stdout
        assert "DENIED by rule no-deletes" in demo.stdout
        assert "COMPLETED by rule refunds-need-approval" in demo.stdout
        assert "audit chain intact" in demo.stdout

        verify = subprocess.run([str(BIN / "proctor"), "audit", "verify"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert verify.returncode == 0, verify.stderr
        postmaster = int((state / "postgres" / "postmaster.pid").read_text().split()[0])
        postgres = psutil.Process(postmaster)
        assert not gone(postgres)
        info = json.loads((state / "stack.json").read_text())
        assert info["pid"] == stack.pid
        assert "***" not in info["database_url"]
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=60)
    output = Path(log.name).read_text()
    assert code == 0, output
    assert "Proctor stopped." in output
    assert not (state / "stack.json").exists()
    assert (state / "temporal.db").exists()
    assert not (state / "postgres" / "postmaster.pid").exists()
    for process in [*children, postgres]:
        assert gone(process), process
