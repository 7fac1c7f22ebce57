"""The Proctor worker: governed-action workflows plus the identity, policy and audit activities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from proctor import payload_keys
from proctor.approvals.defaults import DefaultApprovers
from proctor.approvals.directory import ApproverDirectory, ReloadingDirectory
from proctor.approvals.keys import VoteKeyDirectory
from proctor.approvals.slack import SlackNotifier, slack_client
from proctor.audit.checkpoints import Checkpointer, DirectorySink
from proctor.audit.erasure import SubjectKeys
from proctor.audit.keys import LedgerKeys
from proctor.audit.redaction import PayloadProtector, redact_for_display
from proctor.client import Client as ProctorClient
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import check_schema, connect_pool
from proctor.errors import ProctorError
from proctor.identity import IdentityJudge
from proctor.policy import PolicyEngine
from proctor.policy.lint import nobody_approves
from proctor.policy.reload import ReloadingPolicy
from proctor.settings import (
    NotConfigured,
    ProctorSettings,
    approval_key_dir,
    audit_key_dir,
    check_slack_secrets,
    checkpoint_sink_dir,
    database_url,
    load_settings,
    payload_key_dir,
    temporal_address,
)
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore
from proctor.stores.nonces import NonceStore
from proctor.stores.rates import RateStore
from proctor.temporal import connect_temporal, ensure_search_attributes
from proctor_server.activities.audit import AuditActivities
from proctor_server.activities.grants import GrantActivities
from proctor_server.activities.judgement import JudgementActivities
from proctor_server.activities.reinstatement import ReinstatementActivities
from proctor_server.activities.slack import SlackActivities
from proctor_server.activities.votes import VoteKeyActivities
from proctor_server.worker.approvals_app import (
    approvals_enabled,
    approvals_running,
    build_approvals_app,
)
from proctor_server.worker.observability import (
    configure_logging,
    count_pending_approvals,
    metrics_served,
    temporal_runtime,
)
from proctor_server.worker.policy_watch import audit_policy_changes
from proctor_server.worker.reconciler import Reconciler
from proctor_server.workflows.governed_action import GovernedActionWorkflow
from proctor_server.workflows.reinstatement import ReinstatementWorkflow

log = logging.getLogger(__name__)


def protected_log(
    pool: asyncpg.Pool, policy: Callable[[], PolicyEngine], keys: LedgerKeys
) -> AuditLog:
    """The audit log with the policy's redaction and erasure applied before hashing."""
    protector = PayloadProtector(
        lambda: policy().audit_rules, keys.redaction_hmac, SubjectKeys(pool, keys.subject_kek)
    )
    return AuditLog(pool, protector=protector)


def slack_notifier(
    settings: ProctorSettings,
    policy: Callable[[], PolicyEngine],
    keys: LedgerKeys,
    directory: Callable[[], ApproverDirectory],
) -> SlackNotifier | None:
    """The Slack notifier when a bot token is set; parameters shown redacted like the ledger."""
    if settings.slack_bot_token is None:
        return None
    return SlackNotifier(
        slack_client(settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url),
        directory,
        lambda params: redact_for_display(policy().audit_rules, keys.redaction_hmac, params),
        default_channel=settings.slack_channel,
    )


def sandboxed_runner() -> SandboxedWorkflowRunner:
    """Temporal's sandbox, with cryptography passed through: the workflows verify signatures
    (pure, deterministic), and its native module cannot be loaded a second time in one
    process, so re-importing it per run would abort the worker on the first signature that
    fails to verify (anyone who can reach Temporal can send one)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("cryptography")
    )


def build_worker(
    client: Client,
    pool: asyncpg.Pool,
    policy: Callable[[], PolicyEngine],
    *,
    task_queue: str,
    keys: LedgerKeys,
    vote_keys: VoteKeyDirectory,
    signature_window_seconds: float = 300.0,
    max_delegation_depth: int = 3,
    notifier: SlackNotifier | None = None,
    directory: Callable[[], ApproverDirectory] = ApproverDirectory,
    default_approvers: DefaultApprovers | None = None,
    max_cached_workflows: int = 1000,
    shutdown_grace_seconds: float = 0.0,
    sandboxed: bool = False,
) -> Worker:
    """One worker for everything on the Proctor task queue; dependencies built once here.
    `max_cached_workflows=0` turns off sticky execution (every task may go to any worker);
    `sandboxed` runs the workflows in Temporal's sandbox (see PROCTOR_WORKFLOW_SANDBOX);
    `vote_keys` is the trusted directory of the keys that may sign votes; `default_approvers`
    decide escalations whose rule names nobody (default: the directory's `approver` role)."""
    identity = IdentityJudge(
        AgentStore(pool),
        NonceStore(pool),
        signature_window_seconds,
        lambda agent: policy().trust_policy(agent),
        approver_keys=vote_keys.approver_keys,
        max_delegation_depth=max_delegation_depth,
    )
    defaults = default_approvers or DefaultApprovers()
    ledger = protected_log(pool, policy, keys)
    grants = GrantStore(pool, ledger)
    judgement = JudgementActivities(
        identity,
        policy,
        RateStore(pool),
        lambda: defaults.resolve(directory()),
        audit=ledger,
        grants=grants,
        vote_keys=lambda: vote_keys,
    )
    audit = AuditActivities(ledger)
    votes = VoteKeyActivities(lambda: vote_keys)
    reinstatement = ReinstatementActivities(
        AgentStore(pool), ledger, policy, lambda: defaults.resolve(directory())
    )
    slack = SlackActivities(notifier, directory)
    return Worker(
        client,
        task_queue=task_queue,
        max_cached_workflows=max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=shutdown_grace_seconds),
        workflow_runner=sandboxed_runner() if sandboxed else UnsandboxedWorkflowRunner(),
        workflows=[GovernedActionWorkflow, ReinstatementWorkflow],
        activities=[
            judgement.judge_request,
            GrantActivities(grants).make_grant,
            votes.vote_keys,
            audit.record_audit,
            audit.record_outcome,
            reinstatement.plan_reinstatement,
            reinstatement.reinstate_agent,
            slack.resolve_approvers,
            slack.notify_approvers,
            slack.remind_approvers,
            slack.close_approval_messages,
        ],
    )


async def run_worker(settings: ProctorSettings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGINT/SIGTERM when no event is given)."""
    check_slack_secrets(settings)  # a blank secret stops us before anything starts
    policy = ReloadingPolicy(settings.policy_dir)  # a bad set stops us before connecting
    default_approvers = DefaultApprovers.from_settings(settings)
    keys = LedgerKeys.load_or_create(audit_key_dir(settings))
    directory = ReloadingDirectory(settings.approvers_file)
    pool = await connect_pool(database_url(settings))
    async with contextlib.AsyncExitStack() as running:
        running.push_async_callback(pool.close)  # last: everything below may still write
        await check_schema(pool)
        audit_policy_changes(policy, protected_log(pool, policy.current, keys))
        await policy.announce()
        log.info("policy %s loaded from %s", policy.current().version, settings.policy_dir)
        _warn_where_nobody_approves(policy.current(), default_approvers, directory.current())
        if settings.policy_reload_seconds > 0:
            await running.enter_async_context(
                _in_background(policy.watch(settings.policy_reload_seconds))
            )
        client = await connect_temporal(
            temporal_address(settings),
            settings.temporal_namespace,
            runtime=temporal_runtime(settings),
            settings=settings,
        )
        await ensure_search_attributes(client, SEARCH_ATTRIBUTES)
        _warn_without_payload_ring(settings)
        notifier = slack_notifier(settings, policy.current, keys, directory.current)
        worker = build_worker(
            client,
            pool,
            policy.current,
            task_queue=settings.task_queue,
            keys=keys,
            vote_keys=VoteKeyDirectory(approval_key_dir(settings)),
            signature_window_seconds=settings.signature_window_seconds,
            max_delegation_depth=settings.max_delegation_depth,
            notifier=notifier,
            directory=directory.current,
            default_approvers=default_approvers,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            max_cached_workflows=settings.max_cached_workflows,
            sandboxed=settings.workflow_sandbox,
        )
        stop = stop or _stop_on_signals()
        await running.enter_async_context(_checkpointing(settings, pool, keys))
        reconciler = Reconciler(
            client, protected_log(pool, policy.current, keys), task_queue=settings.task_queue
        )
        # A reconciling pass in flight is idempotent: it stops at once, before the checkpoints.
        await running.enter_async_context(_in_background(reconciler.run(asyncio.Event())))
        async with worker, contextlib.AsyncExitStack() as extras:
            log.info("worker polling task queue %r", settings.task_queue)
            await extras.enter_async_context(metrics_served(settings))
            await extras.enter_async_context(_in_background(count_pending_approvals(client)))
            if settings.approvals_in_worker and approvals_enabled(settings) and notifier:
                app = build_approvals_app(
                    settings,
                    pool,
                    protected_log(pool, policy.current, keys),
                    notifier,
                    ProctorClient(client, task_queue=settings.task_queue),
                )
                where = await extras.enter_async_context(approvals_running(settings, app))
                log.info("approvals app serving Slack at %s", where)
            await stop.wait()
            log.info(
                "stopping: no new tasks; activities in flight get %gs to finish",
                settings.shutdown_grace_seconds,
            )
        log.info("worker stopped")


def _warn_where_nobody_approves(
    engine: PolicyEngine, defaults: DefaultApprovers, directory: ApproverDirectory
) -> None:
    """Escalations left to the default approvers when those are nobody: they can only time
    out (denied). Logged at start, as `policy check` prints them."""
    for problem in nobody_approves(engine.files, defaults.resolve(directory), defaults.describe()):
        log.warning("policy %s: %s", engine.version, problem)


@contextlib.asynccontextmanager
async def _in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `work` while the block runs; cancel it (and wait for it to end) when it leaves."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def _checkpointing(
    settings: ProctorSettings, pool: asyncpg.Pool, keys: LedgerKeys
) -> AsyncIterator[None]:
    """Sign chain heads while the worker runs; on the way out, let it sign the last one."""
    checkpointer = Checkpointer(
        AuditLog(pool),
        keys,
        DirectorySink(checkpoint_sink_dir(settings)),
        every_rows=settings.audit_checkpoint_rows,
        every_seconds=settings.audit_checkpoint_seconds,
    )
    done = asyncio.Event()
    task = asyncio.create_task(checkpointer.run(done))
    try:
        yield
    finally:
        done.set()
        await task


def _warn_without_payload_ring(settings: ProctorSettings) -> None:
    if not payload_keys.exists(payload_key_dir(settings)):
        log.warning(
            "no payload key ring in %s: parameters and results go to Temporal "
            "history in clear text (`proctor payload-key create`)",
            payload_key_dir(settings),
        )


def main() -> None:
    """`python -m proctor_server.worker.main`: the worker alone, set up from the environment."""
    try:
        settings = load_settings()
        configure_logging(settings)
        asyncio.run(run_worker(settings))
    except ProctorError as exc:  # a setting, a policy file, a service: one line, not a trace
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


async def run_approvals_app(settings: ProctorSettings, stop: asyncio.Event | None = None) -> None:
    """Only the approvals app (a deployment may run it apart from the workers)."""
    if not approvals_enabled(settings):
        raise NotConfigured(
            "the approvals app needs PROCTOR_SLACK_BOT_TOKEN and "
            "PROCTOR_SLACK_SIGNING_SECRET (HTTP) or PROCTOR_SLACK_APP_TOKEN "
            "(Socket Mode)"
        )
    policy = ReloadingPolicy(settings.policy_dir)
    keys = LedgerKeys.load_or_create(audit_key_dir(settings))
    directory = ReloadingDirectory(settings.approvers_file)
    notifier = slack_notifier(settings, policy.current, keys, directory.current)
    assert notifier is not None
    pool = await connect_pool(database_url(settings))
    try:
        await check_schema(pool)
        client = await connect_temporal(
            temporal_address(settings),
            settings.temporal_namespace,
            runtime=temporal_runtime(settings),
            settings=settings,
        )
        app = build_approvals_app(
            settings,
            pool,
            protected_log(pool, policy.current, keys),
            notifier,
            ProctorClient(client, task_queue=settings.task_queue),
        )
        stop = stop or _stop_on_signals()
        async with (
            approvals_running(settings, app) as where,
            metrics_served(settings),
            _in_background(count_pending_approvals(client)),
        ):
            log.info("approvals app serving Slack at %s", where)
            await stop.wait()
    finally:
        await pool.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


if __name__ == "__main__":
    main()
