"""`proctor approvals list` / `show` as an operator reads them: parameters redacted with the
policy's audit rules, and a closed request told by how it ended, not by its last stage."""

from __future__ import annotations

from pathlib import Path

from proctor.client import agent_task_queue
from proctor.models import ActionRequest, ExecutionMode, ExecutionSpec
from tests.helpers.cli import arun
from tests.helpers.harness import POLICY_DIR, Harness

EMAIL = "jane.roe@example.com"


def said(stderr: str) -> list[str]:
    """What the command itself said on stderr (not the payload-key notice of a connection
    without encryption), failing on any traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if not line.startswith("no payload keys")]


def operator_env(cli_env: dict[str, str], gov: Harness, **extra: str) -> dict[str, str]:
    return {
        **cli_env,
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_POLICY_DIR": str(POLICY_DIR),
        **extra,
    }


async def waiting_refund(gov: Harness) -> ActionRequest:
    """A refund for a customer, waiting for approval (tests/e2e/policies/audited.yaml marks
    `customer_email` sensitive)."""
    key = await gov.new_agent()
    request = key.new_request(
        "refund_requests",
        {"customer_email": EMAIL, "orderId": 7},
        ExecutionSpec(mode=ExecutionMode.TOOL, task_queue=agent_task_queue(key.agent_id)),
    )
    await gov.proctor.start(request)
    await gov.wait_until_listed(request.workflow_id)
    return request


async def test_list_and_show_print_no_clear_text_email(
    cli_env: dict[str, str],
    gov: Harness,
    tmp_path: Path,
) -> None:
    request = await waiting_refund(gov)
    try:
        listing = await arun(["approvals", "list"], operator_env(cli_env, gov), tmp_path)
        shown = await arun(
            ["approvals", "show", request.workflow_id], operator_env(cli_env, gov), tmp_path
        )
        no_policy = await arun(
            ["approvals", "list"],
            operator_env(cli_env, gov, PROCTOR_POLICY_DIR=str(tmp_path / "nowhere")),
            tmp_path,
        )
    finally:
        await gov.proctor.temporal.get_workflow_handle(request.workflow_id).terminate(
            reason="test over"
        )

    for done in (listing, shown):
        assert done.returncode == 0, done.stderr
        assert EMAIL not in done.stdout
        # The policy's sensitive-field rule, not only the email detector, hid it.
        assert "'customer_email': '[redacted:field:" in done.stdout
        assert "'orderId': 7" in done.stdout
    assert request.workflow_id in listing.stdout
    assert shown.stdout.splitlines()[0] == f"{request.workflow_id}: awaiting_approval"
    # Without the policy's audit rules, only the parameters' names are shown.
    assert no_policy.returncode == 0, no_policy.stderr
    assert EMAIL not in no_policy.stdout
    assert "wants refund_requests {'fields': ['customer_email', 'orderId']}" in no_policy.stdout
    assert said(no_policy.stderr) == [
        "warning: parameter values hidden, the policy's audit "
        f"rules could not be read ({tmp_path / 'nowhere'}:0: "
        "directory: no such policy directory (set "
        "PROCTOR_POLICY_DIR))"
    ]


async def test_show_tells_how_closed_requests_ended(
    cli_env: dict[str, str],
    gov: Harness,
    tmp_path: Path,
) -> None:
    key = await gov.new_agent()
    completed = await gov.proctor.execute(key, "read:orders", {}, handler=lambda p: "ok")
    denied = await gov.proctor.execute(key, "delete:orders", {}, handler=lambda p: "no")
    rejected = await waiting_refund(gov)
    await gov.vote(
        rejected.workflow_id, "alice@example.com", approve=False, note="duplicate refund"
    )
    assert (await gov.proctor.outcome(rejected.request_id)).status.value == "rejected"

    told: dict[str, list[str]] = {}
    for workflow_id in (completed.workflow_id, denied.workflow_id, rejected.workflow_id):
        done = await arun(["approvals", "show", workflow_id], operator_env(cli_env, gov), tmp_path)
        assert done.returncode == 0, done.stderr
        told[workflow_id] = done.stdout.splitlines()
        assert told[workflow_id][0] == f"{workflow_id}: closed"

    assert told[completed.workflow_id][1].startswith("  ended: completed (rule ")
    assert told[denied.workflow_id][1].startswith("  ended: denied (rule no-deletes, policy ")
    lines = told[rejected.workflow_id]
    assert lines[1].startswith("  ended: rejected (rule refunds-need-approval, policy ")
    assert any("alice@example.com deny via cli: accepted" in line for line in lines)
    assert lines[-1].split()[2] == "outcome"
    assert not any("awaiting" in line for line in lines)


async def test_show_of_an_unknown_workflow_is_one_line(
    cli_env: dict[str, str],
    gov: Harness,
    tmp_path: Path,
) -> None:
    done = await arun(
        ["approvals", "show", "action-no-such-request"], operator_env(cli_env, gov), tmp_path
    )
    assert done.returncode == 1
    assert said(done.stderr) == [
        "error: no workflow 'action-no-such-request' in Temporal namespace 'default'"
    ]
