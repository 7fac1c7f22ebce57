"""`proctor up` + `proctor demo` as a user runs them: the whole embedded stack, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from tests.fakes.slack_web_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackInThread

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
    slack = FakeSlack(channels={"C0APPROVALS"})
    for user_id, email in (("U0ALICE", "alice@example.com"), ("U0BOB", "bob@example.com")):
        slack.add_user(user_id, email)
    with SlackInThread(slack):
        run_stack_with_slack(tmp_path, slack)


def run_stack_with_slack(tmp_path: Path, slack: FakeSlack) -> None:
    """The whole stack, with the approvals app talking to the Slack stand-in."""
    state = tmp_path / "state"
    approvals_port = free_port()
    env = {**os.environ, "PROCTOR_STATE_DIR": str(state),
           "PROCTOR_TEMPORAL_PORT": str(free_port()),
           "PROCTOR_TEMPORAL_UI_PORT": str(free_port()),
           "PROCTOR_SLACK_BOT_TOKEN": BOT_TOKEN, "PROCTOR_SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "PROCTOR_SLACK_API_URL": slack.url, "PROCTOR_SLACK_CHANNEL": "C0APPROVALS",
           "PROCTOR_APPROVALS_PORT": str(approvals_port)}
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
        # The demo's refund was asked in Slack (channel + a DM per approver), then closed.
        asked = [m for m in slack.posted() if "refund_requests" in m.text]
        assert {m.channel for m in asked} == {"C0APPROVALS", "DU0ALICE", "DU0BOB"}
        deadline = time.monotonic() + 30
        while not all(m.updates for m in asked):
            assert time.monotonic() < deadline, slack.calls
            time.sleep(0.2)
        unsigned = urllib.request.Request(f"http://127.0.0.1:{approvals_port}/slack/events",
                                          data=b"payload=%7B%7D", method="POST")
        try:
            urllib.request.urlopen(unsigned, timeout=10)  # noqa: S310 (loopback test URL)
            raise AssertionError("an unsigned request was accepted")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401

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
        stack.send_signal(signal.SIGTERM)  # what an orchestrator sends (Ctrl-C: SIGINT, same path)
        code = stack.wait(timeout=60)
    output = Path(log.name).read_text()
    assert code == 0, output
    assert "Proctor stopped." in output
    assert not (state / "stack.json").exists()
    assert (state / "temporal.db").exists()
    assert not (state / "postgres" / "postmaster.pid").exists()
    for process in [*children, postgres]:
        assert gone(process), process
