"""Standing grants end to end (issue 17.4): an approver approves a request and the same
agent's similar ones for a while, from the command line or Slack; a covered request is allowed
under the rule `grant:<id>` without asking anyone; anything else still escalates; a revoked
grant covers nothing. Real worker, Temporal, Postgres, the `proctor` command and the approvals
app with the loopback Slack (policy: tests/e2e/policies/grants.yaml, role `grantee`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from proctor import AgentKey
from proctor.approvals import blocks
from proctor.approvals.keys import VoteSigner
from proctor.contract import DECIDE_SIGNAL
from proctor.models import (
    ActionStatus,
    Effect,
    ExecutionMode,
    ExecutionSpec,
    GrantScope,
    Outcome,
)
from proctor.stores.grants import GrantStore
from tests.helpers.cli import arun
from tests.helpers.fake_slack import FakeSlack, click, send_interaction
from tests.helpers.harness import POLICY_DIR, Harness, eventually
from tests.helpers.slack import SlackHarness, messages_about, slack_harness

ALICE, BOB = "alice@example.com", "bob@example.com"
RULE = "grantable-refunds"
HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


async def ran(params: dict[str, Any]) -> str:
    return "refunded"


async def start(gov: Harness, key: AgentKey, amount: int) -> tuple[asyncio.Task[Outcome], str]:
    request = key.new_request("refund_requests", {"amount": amount}, HANDLER)
    task = asyncio.create_task(gov.proctor.submit(request, handler=ran, key=key))
    return task, request.workflow_id


async def escalates(gov: Harness, key: AgentKey, amount: int) -> None:
    """The request waits for a human, under the rule itself (then bob denies it)."""
    task, workflow_id = await start(gov, key, amount)
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    progress = await gov.proctor.progress(workflow_id)
    assert progress.pending is not None and progress.pending.card.rule_id == RULE
    await gov.vote(workflow_id, BOB, approve=False, note="not covered")
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.REJECTED


async def covered(gov: Harness, key: AgentKey, amount: int, grant_id: str) -> Outcome:
    """The request runs at once, allowed under the grant, and nobody was asked."""
    task, workflow_id = await start(gov, key, amount)
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED, outcome
    assert (outcome.decision.effect, outcome.decision.rule_id) == (
        Effect.ALLOW,
        f"grant:{grant_id}",
    )
    assert outcome.approvals == () and outcome.result == "refunded"
    events = [r.event_type for r in await gov.audit.for_workflow(workflow_id)]
    assert events == ["grant_used", "decided", "trust_changed", "outcome"]
    return outcome


async def the_grant(gov: Harness, agent_id: str) -> str:
    [grant] = await GrantStore(gov.pool, gov.audit).list(agent_id=agent_id)
    return grant.grant_id


@pytest.fixture
def env(
    database_dsn: str, dev_server: WorkflowEnvironment, gov: Harness, tmp_path: Path
) -> dict[str, str]:
    """What `proctor` needs to reach this test's stack, and its trusted vote-key directory."""
    return {
        "PROCTOR_DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_POLICY_DIR": str(POLICY_DIR),
        "PROCTOR_APPROVAL_KEY_DIR": str(gov.vote_keys.root),
    }


async def test_a_grant_from_the_command_line_covers_similar_requests_until_revoked(
    env: dict[str, str], tmp_path: Path, gov: Harness
) -> None:
    key, other = await gov.new_agent(role="grantee"), await gov.new_agent(role="grantee")
    task, workflow_id = await start(gov, key, 450)
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    shown = await arun(["approvals", "show", workflow_id], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "  grants: up to 8h (approve --grant DURATION)" in shown.stdout.splitlines()

    pem = str(tmp_path / "alice.pem")
    made = await arun(["approver", "key", "create", ALICE, "--key-out", pem], env, tmp_path)
    assert made.returncode == 0, made.stderr
    approved = await arun(
        [
            "approve",
            workflow_id,
            "--as",
            ALICE,
            "--key",
            pem,
            "--grant",
            "1h",
            "--grant-when",
            "params.amount <= 600",
        ],
        env,
        tmp_path,
    )
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout == (
        f"approved {workflow_id} as {ALICE}; asked for a standing grant: {RULE} for 1h "
        "(while params.amount <= 600), made if the round approves with it\n"
    )
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED
    grant_id = await the_grant(gov, key.agent_id)
    story = await arun(["approvals", "show", workflow_id], env, tmp_path)
    assert story.returncode == 0, story.stderr
    assert any(
        "grant_made" in line and f"grant_id={grant_id}" in line
        for line in story.stdout.splitlines()
    ), story.stdout

    await covered(gov, key, 500, grant_id)
    await covered(gov, key, 600, grant_id)
    grant = await GrantStore(gov.pool, gov.audit).get(grant_id)
    assert grant is not None and grant.uses == 2
    await escalates(gov, key, 700)  # outside the grant's condition
    await escalates(gov, other, 500)  # another agent: never covered

    revoked = await arun(
        ["grants", "revoke", grant_id, "--by", "ops@example.com", "--reason", "done"],
        env,
        tmp_path,
    )
    assert revoked.returncode == 0, revoked.stderr
    await escalates(gov, key, 500)


async def test_a_longer_grant_than_the_rule_allows_is_capped_and_said(
    env: dict[str, str], tmp_path: Path, gov: Harness
) -> None:
    """grantable-wires allows 30 min; two approvals asking for 2 h and 1 h make 30 min."""
    key = await gov.new_agent(role="grantee")
    request = key.new_request("wire_transfer", {"amount": 10}, HANDLER)
    task = asyncio.create_task(gov.proctor.submit(request, handler=ran, key=key))
    await gov.wait_for_stage(request.workflow_id, "awaiting_approval")
    for who, asked in (("alice@example.com", "2h"), ("carol@example.com", "1h")):
        pem = str(tmp_path / f"{who}.pem")
        made = await arun(["approver", "key", "create", who, "--key-out", pem], env, tmp_path)
        assert made.returncode == 0, made.stderr
        done = await arun(
            ["approve", request.workflow_id, "--key", pem, "--grant", asked], env, tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(
            "--grant capped to 30m: the most rule grantable-wires allows\n"
        )
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    [grant] = await GrantStore(gov.pool, gov.audit).list(agent_id=key.agent_id)
    signed = [v.vote.signed_at for v in outcome.approvals if v.vote.signed_at is not None]
    assert (grant.expires_at - min(signed)).total_seconds() == 1800
    assert grant.made_by == ("alice@example.com", "carol@example.com")


# --- Slack -----------------------------------------------------------------------------------


@pytest.fixture
async def live(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool, slack: FakeSlack
) -> AsyncIterator[SlackHarness]:
    async with slack_harness(dev_server.client, pool, slack) as running:
        yield running


def grant_buttons(live: SlackHarness, workflow_id: str) -> list[str]:
    return [
        element["text"]["text"]
        for message in messages_about(live.slack, workflow_id)
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == blocks.APPROVE_FOR_A_WHILE
    ]


async def test_approve_for_an_hour_in_slack_makes_a_grant_signed_by_the_channel(
    live: SlackHarness,
) -> None:
    gov = live.gov
    key = await gov.new_agent(role="grantee")
    task, workflow_id = await start(gov, key, 300)
    live.started.append(workflow_id)
    await eventually(lambda: len(messages_about(live.slack, workflow_id)) >= 3)
    assert grant_buttons(live, workflow_id) == ["Approve for 1 h"] * 3
    to_alice = next(
        m
        for m in messages_about(live.slack, workflow_id)
        if m.channel == live.slack.dm_channel("U0ALICE")
    )

    response = await send_interaction(
        live.url, click("U0ALICE", to_alice, blocks.APPROVE_FOR_A_WHILE)
    )
    assert response.status == 200
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED
    [recorded] = outcome.approvals
    vote = recorded.vote
    assert (vote.approver, vote.channel, recorded.accepted) == (ALICE, "slack", True)
    assert vote.grant is not None
    assert (vote.grant.rule_id, vote.grant.duration_seconds, vote.grant.when) == (RULE, 3600, None)
    [grant] = await GrantStore(gov.pool, gov.audit).list(agent_id=key.agent_id)
    assert vote.signed_at is not None
    assert (grant.expires_at - vote.signed_at).total_seconds() == 3600
    await eventually(
        lambda: any(
            e["user"] == "U0ALICE" and "1 h" in e["text"] and RULE in e["text"]
            for e in live.slack.ephemeral
        )
    )
    await covered(gov, key, 9000, grant.grant_id)  # no condition: any amount, for an hour


async def test_no_grant_button_where_the_rule_allows_none(live: SlackHarness) -> None:
    """And a grant click on such a request (a stale or hand-made payload) votes nothing: the
    app reads the rule from the waiting workflow, never from the button."""
    key = await live.gov.new_agent()  # role tester: refunds escalate without grants
    task, workflow_id = await start(live.gov, key, 5)
    live.started.append(workflow_id)
    await eventually(lambda: len(messages_about(live.slack, workflow_id)) >= 3)
    assert grant_buttons(live, workflow_id) == []

    message = messages_about(live.slack, workflow_id)[0]
    payload = click("U0ALICE", message, blocks.APPROVE)
    payload["actions"][0]["action_id"] = blocks.APPROVE_FOR_A_WHILE
    assert (await send_interaction(live.url, payload)).status == 200
    await eventually(
        lambda: any(
            e["user"] == "U0ALICE" and "allows no standing grants" in e["text"]
            for e in live.slack.ephemeral
        )
    )
    assert (await live.gov.proctor.progress(workflow_id)).votes == ()
    await live.gov.vote(workflow_id, BOB, approve=False, note="test over")
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.REJECTED


async def test_an_agent_cannot_grant_itself_anything(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    """From the agent's side, with its own Temporal client: votes carrying a grant, signed by a
    key nobody registered or by the agent's own key, are refused like any forged vote; the
    round is decided by a real approver without a grant, and no grant exists afterwards."""
    key = await gov.new_agent(role="grantee")
    task, workflow_id = await start(gov, key, 450)
    await gov.wait_for_stage(workflow_id, "awaiting_approval")
    progress = await gov.proctor.progress(workflow_id)
    assert progress.pending is not None
    digest = progress.pending.card.request_digest
    scope = GrantScope(rule_id=RULE, duration_seconds=8 * 3600)
    attacker = await TemporalClient.connect(
        dev_server.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
    )
    handle = attacker.get_workflow_handle(workflow_id)
    assert isinstance(key.private_key, ed25519.Ed25519PrivateKey)
    for signer in (VoteSigner.generate(approver=ALICE), VoteSigner(key.private_key, ALICE)):
        forged = signer.sign(
            workflow_id=workflow_id, request_digest=digest, approve=True, grant=scope
        )
        await handle.signal(DECIDE_SIGNAL, forged)

    await eventually(lambda: _votes_recorded(gov, workflow_id, 2))
    await gov.vote(workflow_id, BOB, approve=True)
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED and outcome.approvals[-1].vote.approver == BOB
    assert [v.accepted for v in outcome.approvals] == [False, False, True]
    assert (
        await GrantStore(gov.pool, gov.audit).list(agent_id=key.agent_id, include_ended=True) == []
    )
    events = [r.event_type for r in await gov.audit.for_workflow(workflow_id)]
    assert "grant_made" not in events and "grant_refused" not in events
    await escalates(gov, key, 450)


async def _votes_recorded(gov: Harness, workflow_id: str, count: int) -> bool:
    rows = await gov.audit.for_workflow(workflow_id, event_types=("vote",))
    return len(rows) >= count
