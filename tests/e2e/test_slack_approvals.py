"""Approvals through Slack, end to end: real Temporal, real Postgres, the real approvals app,
and a loopback stand-in for Slack's Web API that signs interactivity like Slack."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, AgentKey
from proctor.approvals import blocks
from proctor.approvals.desk import VoteDesk, VoteResult
from proctor.models import ExecutionMode, ExecutionSpec, Outcome
from proctor_server.worker.approvals_app import ApprovalsApp, serving
from tests.helpers.fake_slack import (
    SIGNING_SECRET,
    FakeSlack,
    Message,
    click,
    send_interaction,
    sign,
    submit,
)
from tests.helpers.harness import eventually
from tests.helpers.processes import metric_samples
from tests.helpers.slack import (
    CHANNEL,
    SlackHarness,
    has_event,
    messages_about,
    slack_harness,
    slack_notifier,
)


@pytest.fixture
async def live(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool, slack: FakeSlack
) -> AsyncIterator[SlackHarness]:
    async with slack_harness(dev_server.client, pool, slack) as running:
        yield running


async def escalate(
    live: SlackHarness,
    action: str,
    params: dict[str, Any],
    *,
    messages: int,
    triggered_by: str | None = None,
) -> tuple[AgentKey, asyncio.Task[Outcome], str]:
    """Start a handler-mode action that escalates; wait until its messages are out."""
    key = await live.gov.new_agent()
    request = key.new_request(action, params, HANDLER, triggered_by=triggered_by)
    task = asyncio.create_task(live.gov.proctor.submit(request, handler=_done, key=key))
    live.started.append(request.workflow_id)
    await eventually(lambda: len(_about(live, request.workflow_id)) >= messages)
    return key, task, request.workflow_id


async def _done(params: dict[str, Any]) -> str:
    return "done"


HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


def _about(live: SlackHarness, workflow_id: str) -> list[Message]:
    return messages_about(live.slack, workflow_id)


def dm_to(live: SlackHarness, user_id: str, workflow_id: str) -> Message:
    return next(
        m
        for m in live.requests_posted()
        if m.channel == live.slack.dm_channel(user_id) and workflow_id in str(m.blocks)
    )


async def event_types(live: SlackHarness, workflow_id: str) -> list[str]:
    """The workflow's audit rows; the messages' closing runs beside the execution, so its row
    (which must be there) is left out of the order."""
    await eventually(lambda: has_event(live.gov, workflow_id, "messages_closed"))
    rows = await live.gov.audit.for_workflow(workflow_id)
    return [r.event_type for r in rows if r.event_type != "messages_closed"]


async def app_metrics(live: SlackHarness) -> dict[str, float]:
    """The approvals app's own /metrics, beside its Slack endpoint."""
    base = live.url.rsplit("/slack/", 1)[0]
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return metric_samples(text)


def has_buttons(message: Message) -> bool:
    return any(b["type"] == "actions" for b in message.blocks)


async def test_approve_button_runs_the_action_and_updates_every_message(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(
        live, "refund_requests", {"orderId": 7, "amount": 40}, messages=3
    )
    messages = [m for m in live.requests_posted() if workflow_id in str(m.blocks)]
    assert sorted(m.channel for m in messages) == sorted([CHANNEL, "DU0ALICE", "DU0BOB"])
    assert all(has_buttons(m) for m in messages)
    accepted_before = (await app_metrics(live)).get('proctor_votes_total{verdict="accepted"}', 0)

    response = await send_interaction(
        live.url, click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    )
    assert response.status == 200
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.COMPLETED
    assert [(v.vote.approver, v.vote.channel, v.accepted) for v in outcome.approvals] == [
        ("alice@example.com", "slack", True)
    ]
    await eventually(lambda: all(m.updates == 1 for m in messages))
    for message in messages:
        assert not has_buttons(message)
        assert "Approved" in str(message.blocks) and "alice@example.com" in str(message.blocks)
    assert await event_types(live, workflow_id) == [
        "decided",
        "escalated",
        "notified",
        "vote",
        "trust_changed",
        "outcome",
    ]
    await eventually(
        lambda: any(
            e["user"] == "U0ALICE" and "approved" in e["text"] for e in live.slack.ephemeral
        )
    )
    assert (await app_metrics(live))[
        'proctor_votes_total{verdict="accepted"}'
    ] == accepted_before + 1


async def test_deny_opens_a_modal_that_needs_a_reason(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 8}, messages=3)
    await send_interaction(live.url, click("U0BOB", dm_to(live, "U0BOB", workflow_id), blocks.DENY))
    await eventually(lambda: len(live.slack.views) == 1)
    view = live.slack.views[0]
    assert view["callback_id"] == blocks.DENY_MODAL

    empty = await send_interaction(live.url, submit("U0BOB", view, None))
    assert empty.status == 200  # Slack shows the modal's error; nothing is decided
    assert (await live.gov.proctor.progress(workflow_id)).pending is not None

    await send_interaction(live.url, submit("U0BOB", view, "duplicate of refund #7"))
    outcome = await asyncio.wait_for(task, 30)

    assert outcome.status is ActionStatus.REJECTED
    vote = outcome.approvals[-1]
    assert (vote.vote.approver, vote.vote.approve, vote.vote.note) == (
        "bob@example.com",
        False,
        "duplicate of refund #7",
    )
    await eventually(lambda: all(not has_buttons(m) for m in _about(live, outcome.workflow_id)))
    assert all(
        "duplicate of refund #7" in str(m.blocks) and "Denied" in str(m.blocks)
        for m in _about(live, outcome.workflow_id)
    )


async def test_approve_with_note_keeps_the_note(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 9}, messages=3)
    await send_interaction(
        live.url, click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE_WITH_NOTE)
    )
    await eventually(lambda: len(live.slack.views) == 1)
    await send_interaction(live.url, submit("U0ALICE", live.slack.views[0], "checked the order"))
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert outcome.approvals[-1].vote.note == "checked the order"


async def test_quorum_two_of_three_through_slack(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "wire_transfer", {"amount": 90_000}, messages=4)
    await send_interaction(
        live.url, click("U0CAROL", dm_to(live, "U0CAROL", workflow_id), blocks.APPROVE)
    )
    state = await live.gov.wait_until(
        workflow_id, lambda p: p.pending is not None and len(p.pending.approvals) == 1
    )
    assert state.pending is not None and state.pending.approvals == ("carol@example.com",)
    assert not task.done()

    await send_interaction(
        live.url, click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    )
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert [v.vote.approver for v in outcome.approvals if v.accepted] == [
        "carol@example.com",
        "alice@example.com",
    ]


async def test_unauthorised_clicker_is_refused_audited_and_never_signalled(
    live: SlackHarness,
) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 10}, messages=3)
    channel_post = next(m for m in _about(live, workflow_id) if m.channel == CHANNEL)
    await send_interaction(live.url, click("U0MALLORY", channel_post, blocks.APPROVE))

    await eventually(lambda: any(e["user"] == "U0MALLORY" for e in live.slack.ephemeral))
    told = next(e for e in live.slack.ephemeral if e["user"] == "U0MALLORY")
    assert "not an authorised approver" in told["text"]
    progress = await live.gov.proctor.progress(workflow_id)
    assert progress.votes == () and progress.pending is not None
    refused = [
        r for r in await live.gov.audit.for_workflow(workflow_id) if r.event_type == "vote_refused"
    ]
    assert [(r.actor, json.loads(r.payload)["reason"]) for r in refused] == [
        ("mallory@example.com", "not an authorised approver for this rule")
    ]
    task.cancel()


async def test_owner_and_the_triggering_human_cannot_approve(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "expense", {"amount": 12}, messages=3)
    owners_dm = dm_to(live, "U0OWNER", workflow_id)
    await send_interaction(live.url, click("U0OWNER", owners_dm, blocks.APPROVE))
    await eventually(lambda: any(e["user"] == "U0OWNER" for e in live.slack.ephemeral))
    assert "self-approval" in live.slack.ephemeral[-1]["text"]
    task.cancel()

    _, task, workflow_id = await escalate(
        live, "refund_requests", {"orderId": 11}, messages=3, triggered_by="alice@example.com"
    )
    await send_interaction(
        live.url, click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    )
    await eventually(
        lambda: any(e["user"] == "U0ALICE" and "behalf" in e["text"] for e in live.slack.ephemeral)
    )
    # Defence in depth: the same vote signalled directly is refused by the workflow itself.
    await live.gov.vote(workflow_id, "alice@example.com", approve=True)
    state = await live.gov.wait_until(workflow_id, lambda p: len(p.votes) == 1)
    assert not state.votes[0].accepted and "behalf" in state.votes[0].reason
    await send_interaction(
        live.url, click("U0BOB", dm_to(live, "U0BOB", workflow_id), blocks.APPROVE)
    )
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED


async def test_a_replayed_payload_votes_once(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "wire_transfer", {"amount": 1}, messages=4)
    payload = click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    first = await send_interaction(live.url, payload)
    await live.gov.wait_until(workflow_id, lambda p: len(p.votes) == 1)
    again = await send_interaction(live.url, payload)  # same body, freshly signed: a retry
    assert (first.status, again.status) == (200, 200)
    await asyncio.sleep(0.5)
    assert len((await live.gov.proctor.progress(workflow_id)).votes) == 1
    task.cancel()


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        ("stale", None, "timestamp older than 5 minutes"),
        ("now", "v0=" + "0" * 64, "bad signature"),
        ("now", "", "missing signature or timestamp"),
        ("soon", None, "non-numeric timestamp"),
    ],
)
async def test_requests_not_signed_by_slack_get_401_and_run_nothing(
    live: SlackHarness, timestamp: str, signature: str | None, reason: str
) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 12}, messages=3)
    stamp = {"stale": str(int(time.time()) - 301), "now": str(int(time.time())), "soon": "soon"}[
        timestamp
    ]
    calls_before = len(live.slack.calls)
    refused_before = (await app_metrics(live)).get("proctor_slack_requests_refused_total", 0)
    payload = click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    if timestamp == "soon":  # correctly signed, over a timestamp that isn't a number
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        signature = sign(body, stamp)
    response = await send_interaction(live.url, payload, timestamp=stamp, signature=signature)

    assert response.status == 401
    await asyncio.sleep(0.3)
    assert (await live.gov.proctor.progress(workflow_id)).votes == ()
    assert live.slack.calls[calls_before:] == []  # no handler ran: nobody was looked up
    rows = await live.gov.audit.recent_of_type("slack_request_refused", 20)
    assert reason in [json.loads(r.payload)["reason"] for r in rows]
    assert (await app_metrics(live))["proctor_slack_requests_refused_total"] == refused_before + 1
    task.cancel()


async def test_a_button_bound_to_another_request_is_refused(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 13}, messages=3)
    message = dm_to(live, "U0ALICE", workflow_id)
    payload = click("U0ALICE", message, blocks.APPROVE)
    forged = blocks.ButtonValue(w=workflow_id, d="f" * 64).encode()
    payload["actions"][0]["value"] = forged
    await send_interaction(live.url, payload)
    await eventually(lambda: any("different request" in e["text"] for e in live.slack.ephemeral))
    assert (await live.gov.proctor.progress(workflow_id)).votes == ()
    task.cancel()


async def test_a_cli_decision_updates_every_message(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 14}, messages=3)
    await live.gov.vote(workflow_id, "bob@example.com", approve=True)
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    messages = _about(live, workflow_id)
    await eventually(lambda: all(not has_buttons(m) for m in messages))
    assert all("bob@example.com" in str(m.blocks) for m in messages)


async def test_rate_limits_are_waited_out(live: SlackHarness) -> None:
    live.slack.rate_limited["chat.postMessage"] = 2
    _, task, workflow_id = await escalate(
        live,
        "refund_requests",
        {"orderId": 15},
        messages=3,
    )
    assert live.slack.calls.count("chat.postMessage") >= 5  # two 429s, then three posts
    await live.gov.vote(workflow_id, "bob@example.com", approve=True)
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED


async def test_a_revoked_token_is_audited_and_the_cli_still_decides(live: SlackHarness) -> None:
    live.slack.revoked = True
    key = await live.gov.new_agent()
    request = key.new_request("refund_requests", {"orderId": 16}, HANDLER)
    task = asyncio.create_task(live.gov.proctor.submit(request, handler=_done, key=key))
    live.started.append(request.workflow_id)
    await eventually(lambda: has_event(live.gov, request.workflow_id, "notification_failed"))
    failed = [
        r
        for r in await live.gov.audit.for_workflow(request.workflow_id)
        if r.event_type == "notification_failed"
    ]
    assert "token_revoked" in json.loads(failed[0].payload)["error"]
    await live.gov.vote(request.workflow_id, "bob@example.com", approve=True)
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED


async def test_role_and_slack_group_approvers_are_resolved_at_escalation(
    live: SlackHarness,
) -> None:
    _, task, workflow_id = await escalate(live, "role_payment", {"amount": 5}, messages=3)
    pending = (await live.gov.proctor.progress(workflow_id)).pending
    assert pending is not None
    assert pending.card.approvers == ("alice@example.com", "frank@example.com")
    await send_interaction(
        live.url, click("U0FRANK", dm_to(live, "U0FRANK", workflow_id), blocks.APPROVE)
    )
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED

    _, task, workflow_id = await escalate(live, "group_payment", {"amount": 6}, messages=3)
    pending = (await live.gov.proctor.progress(workflow_id)).pending
    assert pending is not None
    assert pending.card.approvers == ("carol@example.com", "dave@example.com")
    await send_interaction(
        live.url, click("U0DAVE", dm_to(live, "U0DAVE", workflow_id), blocks.APPROVE)
    )
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED


async def test_without_veto_a_deny_counts_until_quorum_is_out_of_reach(live: SlackHarness) -> None:
    _, task, workflow_id = await escalate(live, "soft_deny", {"n": 1}, messages=4)
    await live.gov.vote(workflow_id, "alice@example.com", approve=False, note="no")
    await live.gov.wait_until(workflow_id, lambda p: len(p.votes) == 1)
    assert not task.done()
    await live.gov.vote(workflow_id, "bob@example.com", approve=False, note="no")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.REJECTED


@pytest.fixture
async def over_socket(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool, slack: FakeSlack
) -> AsyncIterator[SlackHarness]:
    async with slack_harness(dev_server.client, pool, slack, socket_mode=True) as running:
        await eventually(lambda: bool(slack.sockets))
        yield running


async def test_socket_mode_applies_the_same_checks_and_dedupe(over_socket: SlackHarness) -> None:
    live, slack = over_socket, over_socket.slack
    assert live.url == "socket-mode"
    _, task, workflow_id = await escalate(live, "wire_transfer", {"amount": 3}, messages=4)
    refused = await slack.send_envelope(
        click("U0MALLORY", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    )
    assert refused["envelope_id"]  # acked, then refused privately and audited
    await eventually(lambda: any(e["user"] == "U0MALLORY" for e in slack.ephemeral))

    alice = click("U0ALICE", dm_to(live, "U0ALICE", workflow_id), blocks.APPROVE)
    await slack.send_envelope(alice)
    await slack.send_envelope(alice)  # redelivered: handled once
    await live.gov.wait_until(workflow_id, lambda p: len(p.votes) == 1)
    await send_nothing_more(live, workflow_id)
    await slack.send_envelope(click("U0BOB", dm_to(live, "U0BOB", workflow_id), blocks.APPROVE))
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status is ActionStatus.COMPLETED
    assert [v.vote.approver for v in outcome.approvals] == ["alice@example.com", "bob@example.com"]


async def send_nothing_more(live: SlackHarness, workflow_id: str) -> None:
    await asyncio.sleep(0.5)
    assert len((await live.gov.proctor.progress(workflow_id)).votes) == 1


async def test_a_missing_channel_still_reaches_the_approvers_directly(live: SlackHarness) -> None:
    live.slack.channels.discard(CHANNEL)
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 17}, messages=2)
    assert {m.channel for m in _about(live, workflow_id)} == {"DU0ALICE", "DU0BOB"}
    await eventually(lambda: has_event(live.gov, workflow_id, "notified"))
    notified = next(
        r for r in await live.gov.audit.for_workflow(workflow_id) if r.event_type == "notified"
    )
    assert json.loads(notified.payload)["undelivered"] == [f"{CHANNEL}: channel_not_found"]
    task.cancel()


class UnreachableDesk(VoteDesk):
    """Temporal gone mid-click: every vote fails to be sent."""

    async def cast(self, *args: Any, **kwargs: Any) -> VoteResult:
        raise ConnectionError("Temporal frontend unreachable")


async def test_a_vote_that_cannot_be_recorded_is_answered_and_can_be_retried(
    live: SlackHarness, pool: asyncpg.Pool
) -> None:
    _, task, workflow_id = await escalate(live, "refund_requests", {"orderId": 18}, messages=3)
    payload = click("U0BOB", dm_to(live, "U0BOB", workflow_id), blocks.APPROVE)
    broken = ApprovalsApp(
        notifier=slack_notifier(live.slack),
        desk=UnreachableDesk(live.gov.proctor, live.gov.audit, live.gov.channel("slack")),
        pool=pool,
        audit=live.gov.audit,
        signing_secret=SIGNING_SECRET,
    )
    async with serving(broken, host="127.0.0.1", port=0) as broken_url:
        await send_interaction(broken_url, payload)
        await eventually(
            lambda: any("could not record your vote" in e["text"] for e in live.slack.ephemeral)
        )
    await send_interaction(live.url, payload)  # the same click, once Proctor is back, counts
    assert (await asyncio.wait_for(task, 30)).status is ActionStatus.COMPLETED
