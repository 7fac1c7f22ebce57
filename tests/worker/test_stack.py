"""`proctor up` + `proctor demo` as a user runs them: the whole embedded stack, then Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client as TemporalClient

from tests.helpers.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackInThread
from tests.helpers.network import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[2]
CODEC_TOKEN = "stack-codec-token-0123456789abcdef"


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
    approvals_port, codec_port, ui_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PROCTOR_STATE_DIR": str(state),
        "PROCTOR_TEMPORAL_PORT": str(free_port()),
        "PROCTOR_TEMPORAL_UI_PORT": str(ui_port),
        "PROCTOR_CODEC_PORT": str(codec_port),
        "PROCTOR_CODEC_TOKEN": CODEC_TOKEN,
        "PROCTOR_SLACK_BOT_TOKEN": BOT_TOKEN,
        "PROCTOR_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PROCTOR_SLACK_API_URL": slack.url,
        "PROCTOR_SLACK_CHANNEL": "C0APPROVALS",
        "PROCTOR_APPROVALS_PORT": str(approvals_port),
    }
    for name in ("PROCTOR_DATABASE_URL", "TEMPORAL_ADDRESS", "PROCTOR_PAYLOAD_KEY_DIR"):
        env.pop(name, None)
    log = (tmp_path / "up.log").open("w+")
    stack = subprocess.Popen(
        [str(BIN / "proctor"), "up"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        while not (state / "stack.json").exists():
            assert stack.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        children = psutil.Process(stack.pid).children(recursive=True)
        assert any("temporal" in p.name() for p in children)

        demo = subprocess.run(
            [str(BIN / "proctor"), "demo"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
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
        unsigned = urllib.request.Request(
            f"http://127.0.0.1:{approvals_port}/slack/events", data=b"payload=%7B%7D", method="POST"
        )
        try:
            urllib.request.urlopen(unsigned, timeout=10)  # noqa: S310 (loopback test URL)
            raise AssertionError("an unsigned request was accepted")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401

        check_encrypted_history(state, codec_port, ui_port)

        verify = subprocess.run(
            [str(BIN / "proctor"), "audit", "verify"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
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


def http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Status and body of a loopback request (an error status is an answer, not a raise)."""
    request = urllib.request.Request(  # noqa: S310
        url,
        data=body,
        headers=headers or {},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def check_encrypted_history(state: Path, codec_port: int, ui_port: int) -> None:
    """The stack made its key ring and encrypted the demo's history; its codec endpoint (the
    UI's, by the dev server's settings) decrypts for the token holder only."""
    keys = list((state / "payload-keys").glob("*.key"))
    assert len(keys) == 1 and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    codec = f"http://127.0.0.1:{codec_port}"
    status, settings = http(f"http://127.0.0.1:{ui_port}/api/v1/settings")
    assert status == 200 and json.loads(settings)["Codec"]["Endpoint"] == codec

    async def demo_start_input() -> Payload:
        info = json.loads((state / "stack.json").read_text())
        plain = await TemporalClient.connect(info["temporal_address"])  # no codec
        async for execution in plain.list_workflows("WorkflowType = 'GovernedActionWorkflow'"):
            history = await plain.get_workflow_handle(execution.id).fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            return started.input.payloads[0]
        raise AssertionError("the demo started no governed action")

    sealed = asyncio.run(demo_start_input())
    assert sealed.metadata["encoding"] == b"binary/encrypted"
    assert b"customer" not in sealed.data and b"orderId" not in sealed.data
    body = json_format.MessageToJson(Payloads(payloads=[sealed])).encode()
    json_type = {"Content-Type": "application/json"}
    assert http(f"{codec}/decode", body, json_type)[0] == 401
    wrong = {**json_type, "Authorization": "Bearer not-the-token-0123456789abcdef"}
    assert http(f"{codec}/decode", body, wrong)[0] == 401
    right = {**json_type, "Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"}
    status, answer = http(f"{codec}/decode", body, right)
    assert status == 200, answer
    [clear] = json_format.Parse(answer, Payloads()).payloads
    assert b'"action"' in clear.data and b'"params"' in clear.data
