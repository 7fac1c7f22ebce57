"""A Slack secret set but blank is a mistake, not "Slack off": the approvals app refuses to
start, alone or inside the worker, with one line naming the variable (never the value)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from proctor.settings import NotConfigured, ProctorSettings, check_slack_secrets
from tests.helpers.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET
from tests.helpers.network import free_port
from tests.helpers.processes import BIN, REPO, worker_env

GOOD = {"PROCTOR_SLACK_BOT_TOKEN": BOT_TOKEN, "PROCTOR_SLACK_SIGNING_SECRET": SIGNING_SECRET}
BLANKS = [
    (variable, blank)
    for variable in (
        "PROCTOR_SLACK_BOT_TOKEN",
        "PROCTOR_SLACK_SIGNING_SECRET",
        "PROCTOR_SLACK_APP_TOKEN",
    )
    for blank in ("", "   ", "\n")
]


@pytest.mark.parametrize(("variable", "blank"), BLANKS)
def test_a_blank_secret_is_refused_by_name(variable: str, blank: str) -> None:
    field = variable.removeprefix("PROCTOR_").lower()
    blank_secret: dict[str, Any] = {field: SecretStr(blank)}
    settings = ProctorSettings(**blank_secret)
    with pytest.raises(NotConfigured, match=f"^{variable} is set but empty"):
        check_slack_secrets(settings)


def test_a_padded_secret_is_refused_and_good_or_unset_ones_pass() -> None:
    padded = ProctorSettings(slack_signing_secret=SecretStr(SIGNING_SECRET + "\n"))
    with pytest.raises(
        NotConfigured,
        match=r"^PROCTOR_SLACK_SIGNING_SECRET has leading or "
        r"trailing whitespace",
    ) as caught:
        check_slack_secrets(padded)
    assert SIGNING_SECRET not in str(caught.value)
    check_slack_secrets(
        ProctorSettings(
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_app_token=SecretStr(APP_TOKEN),
        )
    )
    check_slack_secrets(
        ProctorSettings(slack_bot_token=None, slack_signing_secret=None, slack_app_token=None)
    )


def proctor(
    command: str, env: dict[str, str], seconds: float = 60
) -> subprocess.CompletedProcess[str]:
    """`proctor <command>`; one that is still running when time is up did not refuse."""
    try:
        return subprocess.run(
            [str(BIN / "proctor"), command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired as running:
        raise AssertionError(
            f"`proctor {command}` started instead of refusing:\n{running.stderr!r}"
        ) from running


@pytest.fixture
def env(database_dsn: str, dev_server: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    """Everything a worker needs to start for real, Slack included."""
    return worker_env(
        database_dsn,
        dev_server.client,
        f"secrets-{uuid.uuid4().hex[:8]}",
        tmp_path,
        PROCTOR_APPROVALS_PORT=str(free_port()),
        PROCTOR_SLACK_API_URL="http://127.0.0.1:9/api/",
        **GOOD,
    )


@pytest.mark.parametrize(
    ("variable", "blank"),
    [
        ("PROCTOR_SLACK_SIGNING_SECRET", ""),
        ("PROCTOR_SLACK_SIGNING_SECRET", "  "),
        ("PROCTOR_SLACK_BOT_TOKEN", ""),
        ("PROCTOR_SLACK_APP_TOKEN", "\t"),
    ],
)
def test_the_approvals_app_refuses_to_start_with_one_line(
    env: dict[str, str], variable: str, blank: str
) -> None:
    done = proctor("approvals-app", {**env, variable: blank}, seconds=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {variable} is set but empty")
    assert done.stderr.count("\n") == 1, done.stderr


def test_the_worker_refuses_to_serve_the_app_with_a_blank_secret(env: dict[str, str]) -> None:
    done = proctor("worker", {**env, "PROCTOR_SLACK_SIGNING_SECRET": ""}, seconds=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    *_, last = done.stderr.splitlines()
    assert last.startswith("error: PROCTOR_SLACK_SIGNING_SECRET is set but empty")
