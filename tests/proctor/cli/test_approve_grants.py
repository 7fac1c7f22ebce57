"""`proctor approve --grant`: what is wrong with the ask is one line, before anything is
signed or sent; a rule without grants refuses it before signing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from proctor.models import ActionStatus
from tests.helpers.cli import arun, run
from tests.helpers.harness import Harness


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grant-when", "params.amount <= 600"], "--grant-when and --grant-uses narrow a grant"),
        (["--grant-uses", "3"], "--grant-when and --grant-uses narrow a grant"),
        (["--grant", "soon"], "--grant: 'soon' is not a duration"),
        (["--grant", "0h"], "--grant: a duration must be positive"),
        (["--grant", "1h", "--grant-when", "params.amount <="], "--grant-when: "),
        (["--grant", "1h", "--grant-when", "params.amount + 1"], "--grant-when: "),
    ],
)
def test_a_bad_grant_is_one_line_before_anything_is_signed(
    options: list[str], message: str, tmp_path: Path
) -> None:
    """No server, no key: the ask is checked first."""
    done = run(["approve", "action-x", "--as", "alice@example.com", *options], {}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1


def test_grant_uses_must_be_positive(tmp_path: Path) -> None:
    done = run(
        ["approve", "action-x", "--as", "a@example.com", "--grant", "1h", "--grant-uses", "0"],
        {},
        tmp_path,
    )
    assert done.returncode == 2 and "--grant-uses" in done.stderr


async def test_a_rule_without_grants_refuses_the_ask_before_signing(
    cli_env: dict[str, str], tmp_path: Path, gov: Harness
) -> None:
    env = {
        **cli_env,
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_APPROVAL_KEY_DIR": str(gov.vote_keys.root),
    }
    key = await gov.new_agent()
    calls: list[Any] = []
    request_id = f"no-grant-{key.agent_id}"
    task = asyncio.create_task(
        gov.proctor.execute(
            key, "refund_requests", {"amount": 5}, handler=calls.append, request_id=request_id
        )
    )
    workflow_id = f"action-{request_id}"
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    pem = str(tmp_path / "alice.pem")
    made = await arun(
        ["approver", "key", "create", "alice@example.com", "--key-out", pem], env, tmp_path
    )
    assert made.returncode == 0, made.stderr

    refused = await arun(["approve", workflow_id, "--key", pem, "--grant", "1h"], env, tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == (
        "error: rule refunds-need-approval allows no standing grants: approve without --grant\n"
    )
    assert (await gov.proctor.progress(workflow_id)).votes == ()  # nothing was sent

    plain = await arun(["approve", workflow_id, "--key", pem], env, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED
    assert calls == [{"amount": 5}]
