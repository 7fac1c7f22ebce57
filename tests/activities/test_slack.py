"""The Slack activities in an activity context, against the loopback Slack stand-in: who is
asked, what is posted, how a retried notify resumes from its heartbeat, and what is final."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from proctor.models import (
    ApprovalCard,
    ApprovalClosed,
    ApprovalNotice,
    ApproverNames,
    SlackMessageRef,
)
from proctor_server.activities.slack import NOT_CONFIGURED, SlackActivities
from tests.helpers.fake_slack import FakeSlack
from tests.helpers.slack import CHANNEL, DIRECTORY, fake_slack, slack_notifier

ALICE, BOB = "alice@example.com", "bob@example.com"
CARD = ApprovalCard(
    workflow_id="action-refund-1",
    request_id="refund-1",
    agent_id="agent-refunds",
    action="refund_requests",
    params={"orderId": 12345, "amount": 599.99},
    rule_id="refunds-need-approval",
    reason="Refunds move money",
    trust_score=90.0,
    deadline=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=24),
    quorum=1,
    approvers=(ALICE, BOB),
    request_digest="0" * 64,
)
NOTICE = ApprovalNotice(card=CARD, recipients=(ALICE, BOB), channel=CHANNEL)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with fake_slack() as running:
        yield running


@pytest.fixture
def activities(slack: FakeSlack) -> SlackActivities:
    return SlackActivities(slack_notifier(slack), lambda: DIRECTORY)


def heartbeats_into(env: ActivityEnvironment) -> list[list[dict[str, Any]]]:
    """What the activity heartbeats, in order (each: the messages posted so far)."""
    beats: list[list[dict[str, Any]]] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    return beats


async def test_notify_posts_to_the_channel_and_each_approver_heartbeating_each_message(
    activities: SlackActivities, slack: FakeSlack
) -> None:
    env = ActivityEnvironment()
    beats = heartbeats_into(env)
    result = await env.run(activities.notify_approvers, NOTICE)
    assert [(m.channel, m.approver) for m in result.messages] == [
        (CHANNEL, None),
        (slack.dm_channel("U0ALICE"), ALICE),
        (slack.dm_channel("U0BOB"), BOB),
    ]
    assert result.undelivered == ()
    assert [len(beat) for beat in beats] == [1, 2, 3]
    assert [SlackMessageRef.model_validate(m) for m in beats[-1]] == list(result.messages)
    assert len(slack.posted()) == 3


async def test_a_retried_notify_resumes_from_its_heartbeat_and_posts_nothing_twice(
    activities: SlackActivities, slack: FakeSlack
) -> None:
    crashed = ActivityEnvironment()
    beats = heartbeats_into(crashed)
    recorded = crashed.on_heartbeat

    def lost_after_first_beat(*details: Any) -> None:
        """The attempt is lost right after it heartbeats the channel post."""
        recorded(*details)
        crashed.cancel()

    crashed.on_heartbeat = lost_after_first_beat
    with pytest.raises(asyncio.CancelledError):
        await crashed.run(activities.notify_approvers, NOTICE)
    assert len(beats) == 1 and [m.channel for m in slack.posted()] == [CHANNEL]

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=[beats[-1]])
    result = await retry.run(activities.notify_approvers, NOTICE)
    assert [m.approver for m in result.messages] == [None, ALICE, BOB]
    assert [(m.channel, m.ts) for m in slack.posted()] == [
        (m.channel, m.ts) for m in result.messages
    ]


async def test_approvers_are_resolved_from_the_directory_and_slack_groups(
    activities: SlackActivities,
) -> None:
    known = (BOB, "role:finance-manager", "slack-group:payments-team")
    names = ApproverNames(names=(*known, "slack-group:nobody", "role:auditor"))
    resolved = await ActivityEnvironment().run(activities.resolve_approvers, names)
    assert set(resolved.approvers) == {
        BOB,
        ALICE,  # finance-manager in the directory
        "frank@example.com",
        "carol@example.com",  # members of the payments-team user group
        "dave@example.com",
    }
    assert sorted(resolved.unresolved) == [
        "role:auditor: no approver in the directory holds this role",
        "slack-group:nobody: no such Slack user group, or no member found",
    ]


async def test_closing_updates_every_message_about_the_request(
    activities: SlackActivities, slack: FakeSlack
) -> None:
    posted = await ActivityEnvironment().run(activities.notify_approvers, NOTICE)
    closed = ApprovalClosed(
        card=CARD,
        messages=posted.messages,
        status="approved",
        decided_by=(ALICE,),
        at=datetime(2030, 1, 1, 1, tzinfo=UTC),
    )
    result = await ActivityEnvironment().run(activities.close_approval_messages, closed)
    assert result.undelivered == ()
    assert [slack.message(m.channel, m.ts).updates for m in posted.messages] == [1, 1, 1]


async def test_a_revoked_token_fails_the_step_for_good(
    activities: SlackActivities, slack: FakeSlack
) -> None:
    slack.revoked = True
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.notify_approvers, NOTICE)
    assert refused.value.non_retryable and refused.value.type == "SlackUnusable"
    assert slack.posted() == []


async def test_without_slack_nothing_is_sent_and_the_result_says_why() -> None:
    unconfigured = SlackActivities(None, lambda: DIRECTORY)
    result = await ActivityEnvironment().run(unconfigured.notify_approvers, NOTICE)
    assert result.skipped == NOT_CONFIGURED and result.messages == ()
    groups = ApproverNames(names=(ALICE, "slack-group:payments-team"))
    resolved = await ActivityEnvironment().run(unconfigured.resolve_approvers, groups)
    assert resolved.approvers == (ALICE,)
    assert resolved.unresolved == (f"slack-group:payments-team: {NOT_CONFIGURED}",)
