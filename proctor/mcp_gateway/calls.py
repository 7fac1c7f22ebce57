"""One `tools/call` through the gateway: a governed action `mcp:<server>:<tool>` whose params
are the call's arguments, signed with the gateway's agent key.

Allowed: the call is forwarded and the upstream's result returned unchanged (and recorded).
Denied, rejected, timed out: a tool result with `isError: true` naming the verdict, the rule and
the reason, so the model can adapt. Escalated: the call waits for the decision, sending a
progress notification every `progress_interval_seconds` so the client does not time out.

Which request a call is (see `RequestIds`): the same tool with the same arguments joins the
request this agent has open for them, however long it has waited, so a client that disconnected
and calls again keeps its approval; and within `rejoin_window_seconds` a call whose request has
closed gets that request's answer again instead of running the tool twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from proctor.canonical import canonical_bytes, digest
from proctor.client import Client, call_request
from proctor.contract import ACTION_ATTRIBUTE, AGENT_ATTRIBUTE, STATUS_ATTRIBUTE
from proctor.errors import ActionNotCompleted, ProctorError
from proctor.integrations import verdict_text
from proctor.mcp_gateway.config import GatewayConfig
from proctor.mcp_gateway.local_policy import LocalPolicy
from proctor.mcp_gateway.upstream import Upstream, UpstreamFailed
from proctor.models import ACTION_NAME_PATTERN, HandlerReport, Progress, Stage
from proctor.results import LocalRun, as_json
from proctor.signing import AgentKey

log = logging.getLogger(__name__)

RETRY_ATTEMPTS = 5
"""How many fresh requests one call may make after earlier ones failed to run (upstream crash)."""
APPROVAL_POLL_SECONDS = 0.25
"""How often a call awaiting approval looks whether it has been decided."""
_UNDECIDED = (None, Stage.VERIFYING.value, Stage.AWAITING_APPROVAL.value)
_RETRYABLE = ("failed", "unknown")
"""Closed requests a same call starts afresh: the tool did not answer, nothing was decided."""


MAX_RECORDED_RESULT_BYTES = 256 * 1024
"""Above this, a result is recorded as its digest and size only (Temporal refuses payloads of
2 MB, and the ledger has no use for a file's contents): the caller still gets all of it."""
TOO_LARGE_MARK = "proctor_result_too_large"


def recordable(report: HandlerReport) -> HandlerReport:
    """The report as the workflow will record it: a result over MAX_RECORDED_RESULT_BYTES is
    replaced by its size and SHA-256 digest (so the ledger still proves what was returned)."""
    if not report.succeeded or report.result is None:
        return report
    size = len(canonical_bytes(report.result))
    if size <= MAX_RECORDED_RESULT_BYTES:
        return report
    kept = {TOO_LARGE_MARK: True, "bytes": size, "sha256": digest(report.result)}
    return report.model_copy(update={"result": kept})


def tool_call_action(server: str, tool: str) -> str:
    return f"mcp:{server}:{tool}"


def read_action(server: str) -> str:
    """`resources/read` of `server`, when its config says `govern_reads`."""
    return f"mcp:{server}:read"


def error_result(text: str) -> types.CallToolResult:
    """A tool result the model reads (not a protocol error): it can adapt."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


class RequestIds:
    """The request id of a call: `mcp-<digest of agent, action, arguments>-<window>[-<n>]`.

    Deterministic, so two processes making the same call in one window race to one request;
    the open request for the same call is found by Temporal's visibility (agent and action,
    running) and joined whatever window it began in.
    """

    def __init__(self, client: Client, agent_id: str, window_seconds: float) -> None:
        self._client = client
        self._agent_id = agent_id
        self._window = window_seconds
        self._clock: Callable[[], float] = time.time

    def base(self, action: str, params: dict[str, Any]) -> str:
        parts = "\x1f".join((self._agent_id, action, digest(params)))
        return f"mcp-{hashlib.sha256(parts.encode()).hexdigest()[:40]}"

    def fresh(self, base: str, attempt: int) -> str:
        window = str(int(self._clock() // self._window)) if self._window else _unique()
        return f"{base}-{window}" + (f"-{attempt}" if attempt else "")

    async def open_request(self, action: str, base: str) -> str | None:
        """The request id of this agent's running request for the same call, if any."""
        query = (
            f"{AGENT_ATTRIBUTE.name} = '{self._agent_id}' AND {ACTION_ATTRIBUTE.name} = "
            f"'{action}' AND ExecutionStatus = 'Running'"
        )
        prefix = f"action-{base}-"
        try:
            async for execution in self._client.temporal.list_workflows(query, limit=100):
                if execution.id.startswith(prefix):
                    return execution.id.removeprefix("action-")
        except RPCError as exc:
            log.warning("visibility unavailable, joining by window only: %s", exc.message)
        return None


def _unique() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Governed:
    """What governing one call came to: the run's JSON result, or why it did not run."""

    value: Any = None
    refusal: str | None = None


class GovernedCalls:
    """Turns `tools/call` requests into governed actions of one agent."""

    def __init__(
        self,
        client: Client,
        key: AgentKey,
        config: GatewayConfig,
        policy: LocalPolicy | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.config = config
        self.policy = policy
        self.ids = RequestIds(client, key.agent_id, config.rejoin_window_seconds)

    async def call_tool(
        self,
        ctx: ServerRequestContext[Any],
        server: str,
        upstream: Upstream,
        tool: str,
        arguments: dict[str, Any] | None,
    ) -> types.CallToolResult:
        action = tool_call_action(server, tool)
        if not re.match(ACTION_NAME_PATTERN, action):
            return error_result(
                f"Proctor cannot govern {tool!r}: its name makes no action name "
                "(letters, digits and _.:/- only)"
            )
        params = as_json(arguments or {})

        async def forward(**_: Any) -> dict[str, Any]:
            result = await upstream.call_tool(tool, arguments)
            dumped: dict[str, Any] = result.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
            return dumped

        governed = await self.govern(ctx, action, params, forward)
        if governed.refusal is not None:
            return error_result(governed.refusal)
        if isinstance(governed.value, dict) and governed.value.get(TOO_LARGE_MARK):
            return error_result(
                f"Proctor: {action} already ran with these arguments; its result "
                f"({governed.value['bytes']} bytes) was too large to record, so it cannot be "
                "given again. Call it with other arguments if you need it."
            )
        return types.CallToolResult.model_validate(governed.value)

    async def govern(
        self,
        ctx: ServerRequestContext[Any],
        action: str,
        params: dict[str, Any],
        run: Callable[..., Any],
    ) -> Governed:
        """Govern `run` as `action`: its JSON result, or why it did not run (one line)."""
        base = self.ids.base(action, params)
        fast = self.policy is not None and self.policy.likely_allows(action, params)
        request_id = None if fast else await self.ids.open_request(action, base)
        for attempt in range(RETRY_ATTEMPTS):
            request_id = request_id or self.ids.fresh(base, attempt)
            try:
                value = await self._governed_once(ctx, action, params, run, request_id, fast=fast)
            except ActionNotCompleted as exc:
                if exc.status in _RETRYABLE:  # joined a closed request (a run here re-raises)
                    request_id = None  # closed without an answer: this call is a new request
                    continue
                return Governed(refusal=verdict_text(exc, action))
            except UpstreamFailed as exc:
                return Governed(refusal=str(exc))
            except ProctorError as exc:
                return Governed(refusal=f"Proctor could not govern {action}: {exc}")
            except RPCError as exc:  # Temporal unreachable, or refused the call: nothing ran
                return Governed(refusal=f"Proctor could not govern {action}: {exc.message}")
            if value is _STILL_WAITING:
                return Governed(
                    refusal=f"Proctor: {action} is still awaiting approval after "
                    f"{self.config.max_wait_seconds:g}s (request {request_id}). Nothing ran. "
                    "Call this tool again with the same arguments to keep waiting: "
                    "the approval is not lost."
                )
            return Governed(value=value)
        return Governed(
            refusal=f"Proctor could not run {action}: the same call failed {RETRY_ATTEMPTS} times"
        )

    async def _governed_once(
        self,
        ctx: ServerRequestContext[Any],
        action: str,
        params: dict[str, Any],
        run: Callable[..., Any],
        request_id: str,
        *,
        fast: bool,
    ) -> Any:
        """Submit (or join), wait for the decision, then ask for the permission to run.

        No permission is asked before the request is decided: a pending ask outlives a client
        that goes away, and the workflow would grant an approval to it (a dead process) rather
        than to the same call made again later. Except on the `fast` path (the local policy
        expects it allowed outright): submitted and asked in one round trip, as `Client.call`
        does; should the guess be wrong (a policy changed since it was read, a trust score
        fallen), that one call waits with its ask pending. The request id names its params (a
        digest of them), so a joined request is this very call."""
        local: LocalRun[Any] = LocalRun(run, params)
        request = call_request(self.key, action, local.params, {"request_id": request_id})
        ticker = asyncio.create_task(self._report_waiting(ctx, request.workflow_id))
        try:
            async with asyncio.timeout(self.config.max_wait_seconds):
                if not fast:
                    await self.client.join(request)
                    await self._until_decided(request.workflow_id)
                handle, claim_token = await self.client.permission(
                    request, self.key, rejoining=fast
                )
                if claim_token is None:
                    return local.answer(await self.client.result(handle), dict)
        except TimeoutError:
            return _STILL_WAITING
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

        async def run_and_report() -> Any:
            await local.invoke()
            report = recordable(local.report(claim_token))
            outcome = await self.client.report(handle, self.key, report)
            return local.answer(outcome, dict)

        # Permission taken: the run and its report finish even if the client goes away.
        running = asyncio.ensure_future(run_and_report())
        running.add_done_callback(_retrieved)
        return await asyncio.shield(running)

    async def _until_decided(self, workflow_id: str) -> None:
        """Poll until the request is past verification and approval: quickly at first (policy
        decides in milliseconds), then every APPROVAL_POLL_SECONDS while humans decide. Read
        from the workflow's description (the stage it publishes), which needs no worker."""
        handle = self.client.temporal.get_workflow_handle(workflow_id)
        pause = 0.002
        while True:
            description = await handle.describe()
            if description.status is not WorkflowExecutionStatus.RUNNING:
                return
            stage = description.typed_search_attributes.get(STATUS_ATTRIBUTE)
            if stage not in _UNDECIDED:
                return
            waiting = stage == Stage.AWAITING_APPROVAL
            await asyncio.sleep(APPROVAL_POLL_SECONDS if waiting else pause)
            pause = min(pause * 2, 0.05)

    async def _report_waiting(self, ctx: ServerRequestContext[Any], workflow_id: str) -> None:
        """Progress notifications while the call waits (no-ops if the client sent no token)."""
        interval = self.config.progress_interval_seconds
        ticks = 0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            message = await self._waiting_message(workflow_id)
            try:
                await ctx.session.report_progress(ticks, None, message)
            except Exception as exc:  # a gone client must not fail the call
                log.debug("progress notification not sent: %s", exc)
                return

    async def _waiting_message(self, workflow_id: str) -> str:
        try:
            progress = await self.client.progress(workflow_id)
        except RPCError:
            return f"Proctor: {workflow_id} is being decided"
        return waiting_text(workflow_id, progress)


def waiting_text(workflow_id: str, progress: Progress) -> str:
    """What a waiting call's progress notification says."""
    if progress.stage is Stage.AWAITING_APPROVAL and progress.pending is not None:
        pending = progress.pending
        approvers = ", ".join(pending.card.approvers) or "nobody yet"
        votes = f"{len(pending.approvals)} approved, {len(pending.denials)} denied"
        return f"Proctor: awaiting approval ({votes}; approvers: {approvers}) — {workflow_id}"
    return f"Proctor: {progress.stage.value.replace('_', ' ')} — {workflow_id}"


_STILL_WAITING = object()
"""The call waited `max_wait_seconds` for a decision; its request waits on."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A shielded run whose caller left: its failure is recorded by Proctor, not re-logged."""
    if not future.cancelled():
        future.exception()
