"""Proctor with Slack: the worker notifying a loopback Slack stand-in, and the approvals app
serving its interactivity endpoint, both on real Temporal and Postgres."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from temporalio.client import Client as TemporalClient
from temporalio.service import RPCError

from proctor.approvals.desk import VoteDesk
from proctor.approvals.directory import ApproverDirectory, DirectoryEntry
from proctor.approvals.slack import SlackNotifier, slack_client
from proctor.audit.keys import LedgerKeys
from proctor.audit.redaction import redact_for_display
from proctor_server.worker.approvals_app import ApprovalsApp, serving
from tests.helpers.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    Message,
)
from tests.helpers.harness import Harness, harness, policy_engine

CHANNEL = "C0APPROVALS"
PEOPLE = {
    "U0ALICE": "alice@example.com",
    "U0BOB": "bob@example.com",
    "U0CAROL": "carol@example.com",
    "U0DAVE": "dave@example.com",
    "U0ERIN": "erin@example.com",
    "U0OWNER": "owner@example.com",
    "U0MALLORY": "mallory@example.com",
    "U0FRANK": "frank@example.com",
}
DIRECTORY = ApproverDirectory(
    {
        # Alice is linked by Slack id; everyone else is found by the email on their profile.
        "alice@example.com": DirectoryEntry(slack="U0ALICE", roles=("finance-manager",)),
        "frank@example.com": DirectoryEntry(roles=("finance-manager",)),
    }
)


@dataclass
class SlackHarness:
    gov: Harness
    slack: FakeSlack
    url: str
    """The approvals app's interactivity endpoint."""
    started: list[str] = field(default_factory=list)
    """Workflows a test started: any still waiting are terminated when it ends."""

    def requests_posted(self) -> list[Message]:
        """Top-level messages (channel posts and DMs) with their current blocks."""
        return self.slack.posted(thread=False)


def messages_about(slack: FakeSlack, workflow_id: str) -> list[Message]:
    """The top-level messages (channel posts and DMs) about one request."""
    return [m for m in slack.posted() if workflow_id in str(m.blocks)]


async def has_event(gov: Harness, workflow_id: str, event_type: str) -> bool:
    return any(r.event_type == event_type for r in await gov.audit.for_workflow(workflow_id))


def slack_notifier(slack: FakeSlack, directory: ApproverDirectory = DIRECTORY) -> SlackNotifier:
    keys = LedgerKeys.generate()
    engine = policy_engine()
    return SlackNotifier(
        slack_client(BOT_TOKEN, base_url=slack.url),
        lambda: directory,
        lambda params: redact_for_display(engine.audit_rules, keys.redaction_hmac, params),
        default_channel=CHANNEL,
    )


@asynccontextmanager
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(channels={CHANNEL, "C0LONGWAITS"})
    for user_id, email in PEOPLE.items():
        slack.add_user(user_id, email)
    slack.usergroups["S0PAY"] = ("payments-team", ["U0CAROL", "U0DAVE"])
    await slack.start()
    try:
        yield slack
    finally:
        await slack.stop()


@asynccontextmanager
async def approvals_app(
    gov: Harness, pool: asyncpg.Pool, slack: FakeSlack, *, socket_mode: bool = False
) -> AsyncIterator[str]:
    """The approvals app on a free loopback port (yields its interactivity URL), or connected
    to the stand-in over Socket Mode."""
    app = ApprovalsApp(
        notifier=slack_notifier(slack),
        desk=VoteDesk(gov.proctor, gov.audit, gov.channel("slack")),
        pool=pool,
        audit=gov.audit,
        signing_secret=None if socket_mode else SIGNING_SECRET,
    )
    async with serving(
        app, host="127.0.0.1", port=0, app_token=APP_TOKEN if socket_mode else None
    ) as url:
        yield url


@asynccontextmanager
async def slack_harness(
    temporal: TemporalClient, pool: asyncpg.Pool, slack: FakeSlack, *, socket_mode: bool = False
) -> AsyncIterator[SlackHarness]:
    notifier = slack_notifier(slack)
    async with (
        harness(temporal, pool, notifier=notifier, directory=DIRECTORY) as gov,
        approvals_app(gov, pool, slack, socket_mode=socket_mode) as url,
    ):
        running = SlackHarness(gov, slack, url)
        try:
            yield running
        finally:
            for workflow_id in running.started:
                with contextlib.suppress(RPCError):
                    await temporal.get_workflow_handle(workflow_id).terminate("test over")
