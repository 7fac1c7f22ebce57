"""The agent-side client: sign a request, run it through governance, execute only if allowed.

```python
proctor = await Client.connect()
result = await proctor.execute(key, "refund_requests", {"orderId": 1, "amount": 5},
                               handler=process_refund)
```
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, Unpack, overload

from temporalio import activity
from temporalio import client as temporal_client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from proctor.canonical import canonical_bytes
from proctor.connection import connect_agent
from proctor.contract import (
    ACTION_ATTRIBUTE,
    AGENT_ATTRIBUTE,
    GOVERNED_ACTION_WORKFLOW,
    PROGRESS_QUERY,
    REPORT_RESULT_UPDATE,
    REQUEST_PERMISSION_UPDATE,
    STATUS_ATTRIBUTE,
    tool_activity,
)
from proctor.errors import ConflictError, ProctorError, UnavailableError
from proctor.models import (
    ActionRequest,
    DelegationLink,
    ExecutionMode,
    ExecutionSpec,
    GovernedActionInput,
    HandlerReport,
    Outcome,
    Permission,
    PermissionRequest,
    Progress,
    Stage,
    ToolCall,
    ToolResult,
    workflow_id_for,
)
from proctor.results import LocalRun, as_json
from proctor.signing import AgentKey, sign_bytes

UpdateResult = TypeVar("UpdateResult")
T = TypeVar("T")
Handler = Callable[[dict[str, Any]], Any] | Callable[[dict[str, Any]], Awaitable[Any]]
ToolFunction = Callable[[dict[str, Any]], Awaitable[Any]]
WORKFLOW_TIMEOUT = timedelta(days=365)
_TRANSIENT = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
log = logging.getLogger(__name__)
StatusCallback = Callable[[str], None]
"""Told a resubmitted request's stage (`awaiting_approval`, `executing`, `closed (completed)`…)."""


class CallOptions(TypedDict, total=False):
    """The options of a governed call (`Client.call`), besides what to run."""

    request_id: str | None
    result_type: Any
    execution_timeout: timedelta
    triggered_by: str | None
    on_status: StatusCallback | None
    on_behalf_of: str | None
    delegation: Sequence[DelegationLink]


class GovernanceError(ProctorError, RuntimeError):
    """Governance itself could not complete (e.g. the audit log stayed unwritable): the action
    was not executed by Proctor."""


def handler_request(
    key: AgentKey,
    action: str,
    params: dict[str, Any],
    *,
    request_id: str | None = None,
    execution_timeout: timedelta = timedelta(hours=1),
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
    delegation: Sequence[DelegationLink] = (),
) -> ActionRequest:
    """A signed handler-mode request: the action runs in the agent's own process."""
    spec = ExecutionSpec(
        mode=ExecutionMode.HANDLER, timeout_seconds=execution_timeout.total_seconds()
    )
    return key.new_request(
        action,
        params,
        spec,
        request_id=request_id,
        triggered_by=triggered_by,
        on_behalf_of=on_behalf_of,
        delegation=delegation,
    )


def call_request(
    key: AgentKey, action: str, params: dict[str, Any], options: CallOptions
) -> ActionRequest:
    """The signed handler-mode request of a governed call (`Client.call`, `SyncClient.call`);
    an option it does not know is a TypeError, as a misspelt keyword argument is."""
    unknown = set(options) - CallOptions.__optional_keys__
    if unknown:
        raise TypeError(f"call() got unexpected options: {', '.join(sorted(unknown))}")
    return handler_request(
        key,
        action,
        params,
        request_id=options.get("request_id"),
        execution_timeout=options.get("execution_timeout", timedelta(hours=1)),
        triggered_by=options.get("triggered_by"),
        on_behalf_of=options.get("on_behalf_of"),
        delegation=options.get("delegation", ()),
    )


def agent_task_queue(agent_id: str) -> str:
    return f"proctor-agent-{agent_id}"


class Client:
    """Governs actions for agents. Holds a Temporal client and the durable tools registered
    on it; safe to share across tasks."""

    def __init__(self, temporal: temporal_client.Client, *, task_queue: str = "proctor") -> None:
        self.temporal = temporal
        self.task_queue = task_queue
        self._tools: dict[str, ToolFunction] = {}

    @classmethod
    async def connect(
        cls,
        address: str | None = None,
        *,
        namespace: str | None = None,
        task_queue: str | None = None,
    ) -> Client:
        """Connect to `address`, else TEMPORAL_ADDRESS, else the running `proctor up`."""
        connection = await connect_agent(address, namespace=namespace, task_queue=task_queue)
        return cls(connection.temporal, task_queue=connection.task_queue)

    # --- durable tools --------------------------------------------------------------------

    def tool(self, action: str) -> Callable[[ToolFunction], ToolFunction]:
        """Register `async def fn(params) -> result` as the durable tool for `action`.

        The workflow runs it (with retries) on the agent's task queue after approval, even if
        this process restarted in the meantime: run `agent_worker` in the new process too.
        """

        def register(fn: ToolFunction) -> ToolFunction:
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"tool {action!r} must be an async function")
            self._tools[action] = fn
            return fn

        return register

    def agent_worker(self, agent_id: str) -> Worker:
        """A Temporal worker running this client's tools for `agent_id` (use `async with`)."""
        if not self._tools:
            raise ValueError("no tools registered: decorate them with @client.tool(action)")
        return Worker(
            self.temporal,
            task_queue=agent_task_queue(agent_id),
            activities=[_tool_activity(a, fn) for a, fn in self._tools.items()],
        )

    # --- governed execution ---------------------------------------------------------------

    async def execute(
        self,
        key: AgentKey,
        action: str,
        params: dict[str, Any],
        *,
        handler: Handler | None = None,
        request_id: str | None = None,
        execution_timeout: timedelta = timedelta(hours=1),
        max_attempts: int = 3,
        triggered_by: str | None = None,
        on_status: StatusCallback | None = None,
        on_behalf_of: str | None = None,
        delegation: Sequence[DelegationLink] = (),
    ) -> Outcome:
        """Ask to perform `action`; runs `handler` (or the registered tool) only if allowed.

        Without a handler the action must be a tool registered on this client. Passing the
        same `request_id` again (e.g. after a crash) joins the first request: it returns the
        first outcome and never executes twice; `on_status` (else the log) is told at once
        where that request stands. `delegation` (e.g. from `proctor.delegation.load_chain` or
        `key.delegate`) is the signed chain, root first, letting this agent act for
        `on_behalf_of`; both are signed into the request.
        """
        if handler is not None:
            spec = ExecutionSpec(
                mode=ExecutionMode.HANDLER, timeout_seconds=execution_timeout.total_seconds()
            )
        elif action in self._tools:
            spec = ExecutionSpec(
                mode=ExecutionMode.TOOL,
                task_queue=agent_task_queue(key.agent_id),
                timeout_seconds=execution_timeout.total_seconds(),
                max_attempts=max_attempts,
            )
        else:
            raise ValueError(f"give handler= or register a tool for {action!r}")
        request = key.new_request(
            action,
            params,
            spec,
            request_id=request_id,
            triggered_by=triggered_by,
            on_behalf_of=on_behalf_of,
            delegation=delegation,
        )
        if handler is not None:
            return await self._governed_handler(
                request, handler, key, rejoining=request_id is not None, on_status=on_status
            )
        if request_id is not None:
            await self._check_resubmission(request, on_status)
        return await self.submit(request)

    async def _check_resubmission(
        self, request: ActionRequest, on_status: StatusCallback | None
    ) -> None:
        """A resubmission: say at once where the earlier submission stands (nothing if it is
        new), and refuse one whose action or parameters differ from what was governed: a
        request id names one request, and the answer given to it must not run other
        parameters. From Temporal's description and the workflow's input, which need no worker
        to answer."""
        handle = self._handle(request.workflow_id)
        try:
            description = await handle.describe()
        except RPCError:
            return  # not started yet: a new request
        first = await self._submitted(handle)
        if first is not None and (first.action, first.params) != (request.action, request.params):
            raise ConflictError(
                f"{request.workflow_id}: request {request.request_id} was submitted as "
                f"{first.action} with other parameters; a request id names one request "
                "(use a new id for a new request)"
            )
        stage = description.typed_search_attributes.get(STATUS_ATTRIBUTE) or "verifying"
        if description.status is not temporal_client.WorkflowExecutionStatus.RUNNING:
            stage = f"closed ({description.status.name.lower() if description.status else '?'})"
        if on_status is not None:
            on_status(stage)
        else:
            log.info("%s was submitted before and is %s", request.workflow_id, stage)

    async def submitted(self, workflow_id: str) -> ActionRequest | None:
        """The signed request the workflow `workflow_id` governs (None: not a governed
        action's workflow); RPCError NOT_FOUND if it was never started."""
        return await self._submitted(self._handle(workflow_id))

    async def _submitted(
        self, handle: temporal_client.WorkflowHandle[Any, Outcome]
    ) -> ActionRequest | None:
        """The request a workflow was started with (its first history event)."""
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            if not started.input.payloads:
                return None
            (governed,) = await self.temporal.data_converter.decode(
                started.input.payloads, [GovernedActionInput]
            )
            return governed.request if isinstance(governed, GovernedActionInput) else None
        return None

    # --- a governed call, as the caller's own function ------------------------------------

    @overload
    async def call(
        self,
        key: AgentKey,
        action: str,
        fn: Callable[..., Awaitable[T]],
        params: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> T: ...

    @overload
    async def call(
        self,
        key: AgentKey,
        action: str,
        fn: Callable[..., T],
        params: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> T: ...

    async def call(
        self,
        key: AgentKey,
        action: str,
        fn: Callable[..., Any],
        params: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> Any:
        """`fn(**params)` (sync or async), run in this process only once governance allows it.

        Returns what `fn` returned, as it returned it. When this call joins a request that
        another process ran (same `request_id`), the recorded result comes back validated into
        `result_type` (default: `fn`'s return annotation). Anything but a completed action
        raises: `fn`'s own exception when it failed here, else the typed `ActionNotCompleted`
        (`ActionDenied`, `ActionRejected`, ...) carrying the rule and reason. The parameters
        are signed as JSON; `fn` receives the objects given.
        """
        run: LocalRun[Any] = LocalRun(fn, params or {})
        request = call_request(key, action, run.params, options)
        handle, claim_token = await self.permission(
            request,
            key,
            rejoining=options.get("request_id") is not None,
            on_status=options.get("on_status"),
        )
        result_type = options.get("result_type")
        if claim_token is None:
            return run.answer(await self._result(handle), result_type)
        await run.invoke()
        return run.answer(await self.report(handle, key, run.report(claim_token)), result_type)

    async def permission(
        self,
        request: ActionRequest,
        key: AgentKey,
        *,
        rejoining: bool = False,
        on_status: StatusCallback | None = None,
    ) -> tuple[temporal_client.WorkflowHandle[Any, Outcome], str | None]:
        """Submit (or rejoin) a signed handler-mode request and wait until this process may
        run it: the claim token to report with, or None (it will not run here: the handle's
        result says why). The steps of `call`, for callers that must run the action on a
        thread of their own (`SyncClient`). `rejoining`: the request id may have been
        submitted before (checked: same action and parameters, and where it stands)."""
        if rejoining:
            # Optimistic: a new request (the common case) starts and asks in one call; only a
            # request id that already names a workflow is checked, then joined.
            asked = await self._ask_with_start(request, key, join_existing=False)
            if asked is None:
                await self._check_resubmission(request, on_status)
                asked = await self._start_asking_permission(request, key)
        else:
            asked = await self._start_asking_permission(request, key)
        handle, permission = asked
        if permission is not None and permission.granted and permission.claim_token:
            return handle, permission.claim_token
        if permission is not None and permission.reason:
            log.info("%s: not granted to this process: %s", request.workflow_id, permission.reason)
        return handle, None

    async def report(
        self,
        handle: temporal_client.WorkflowHandle[Any, Outcome],
        key: AgentKey,
        report: HandlerReport,
    ) -> Outcome:
        """Report how a permitted run went, signed by the agent's key; the outcome."""
        return await _await_update(handle, REPORT_RESULT_UPDATE, _signed(key, report), Outcome)

    async def result(self, handle: temporal_client.WorkflowHandle[Any, Outcome]) -> Outcome:
        """The outcome of a request this process will not run."""
        return await self._result(handle)

    async def decide(
        self,
        key: AgentKey,
        action: str,
        params: Mapping[str, Any],
        *,
        request_id: str,
        execution_timeout: timedelta = timedelta(hours=1),
        triggered_by: str | None = None,
        on_behalf_of: str | None = None,
        delegation: Sequence[DelegationLink] = (),
        within: timedelta = timedelta(seconds=60),
    ) -> Progress:
        """Submit (or join) a handler-mode request without taking the permission to run it,
        and return where it stands once decided: awaiting approval (`progress.pending`),
        awaiting execution (allowed: `call` or `execute` with the same `request_id` runs it,
        within `execution_timeout`), or closed (`progress.outcome`). For frameworks that pause
        a run for a human and resume it later."""
        request = handler_request(
            key,
            action,
            as_json(dict(params)),
            request_id=request_id,
            execution_timeout=execution_timeout,
            triggered_by=triggered_by,
            on_behalf_of=on_behalf_of,
            delegation=delegation,
        )
        await self._check_resubmission(request, on_status=lambda _stage: None)
        handle = await self._start(request)
        try:
            return await self.decided(handle.id, within=within)
        except TimeoutError:
            raise UnavailableError(
                f"{handle.id}: not decided within {within.total_seconds():.0f}s: "
                "is a Proctor worker running?"
            ) from None

    async def join(self, request: ActionRequest) -> temporal_client.WorkflowHandle[Any, Outcome]:
        """Start governing a signed request (any mode), or join the workflow already governing
        its request id, asking nothing of it: see `decided`, `permission`, `result`."""
        return await self._start(request)

    async def start(self, request: ActionRequest) -> temporal_client.WorkflowHandle[Any, Outcome]:
        """Start governing a signed tool-mode request without waiting (await the handle's
        `result()` later, from any process); the same request again returns the same handle."""
        if request.execution.mode is not ExecutionMode.TOOL:
            raise ValueError("start() is for tool-mode requests; handler mode needs submit()")
        return await self._start(request)

    async def submit(
        self, request: ActionRequest, *, handler: Handler | None = None, key: AgentKey | None = None
    ) -> Outcome:
        """Run an already-signed request through governance (see `execute`). Handler mode
        needs the agent's `key` too: it signs the ask for permission and the report."""
        if request.execution.mode is not ExecutionMode.HANDLER:
            return await self._result(await self._start(request))
        if handler is None or key is None:
            raise ValueError("a handler-mode request needs handler= and key=")
        return await self._governed_handler(request, handler, key)

    async def _governed_handler(
        self,
        request: ActionRequest,
        handler: Handler,
        key: AgentKey,
        *,
        rejoining: bool = False,
        on_status: StatusCallback | None = None,
    ) -> Outcome:
        handle, claim_token = await self.permission(
            request, key, rejoining=rejoining, on_status=on_status
        )
        if claim_token is None:  # refused, or closed already: the outcome says why
            return await self._result(handle)
        return await self._run_granted(handle, claim_token, handler, request.params, key)

    def _start_options(
        self, request: ActionRequest, *, join_existing: bool = True
    ) -> dict[str, Any]:
        return {
            "id": request.workflow_id,
            "task_queue": self.task_queue,
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
            "id_conflict_policy": (
                WorkflowIDConflictPolicy.USE_EXISTING
                if join_existing
                else WorkflowIDConflictPolicy.FAIL
            ),
            "execution_timeout": WORKFLOW_TIMEOUT,
            "search_attributes": TypedSearchAttributes(
                [
                    SearchAttributePair(AGENT_ATTRIBUTE, request.agent_id),
                    SearchAttributePair(ACTION_ATTRIBUTE, request.action),
                    SearchAttributePair(STATUS_ATTRIBUTE, "verifying"),
                ]
            ),
        }

    async def _start(self, request: ActionRequest) -> temporal_client.WorkflowHandle[Any, Outcome]:
        try:
            return await self.temporal.start_workflow(
                GOVERNED_ACTION_WORKFLOW,
                GovernedActionInput(request=request),
                result_type=Outcome,
                **self._start_options(request),
            )
        except WorkflowAlreadyStartedError:
            # Already ran to completion: the first outcome stands.
            return self._handle(request.workflow_id)

    async def _start_asking_permission(
        self, request: ActionRequest, key: AgentKey
    ) -> tuple[temporal_client.WorkflowHandle[Any, Outcome], Permission | None]:
        """`_ask_with_start`, joining the workflow if it exists."""
        asked = await self._ask_with_start(request, key, join_existing=True)
        return asked if asked is not None else (self._handle(request.workflow_id), None)

    async def _ask_with_start(
        self,
        request: ActionRequest,
        key: AgentKey,
        *,
        join_existing: bool,
    ) -> tuple[temporal_client.WorkflowHandle[Any, Outcome], Permission | None] | None:
        """Start (or join) the workflow and ask for permission in one call: the question rides
        the workflow's first task instead of following it in a second one. None: no answer
        (the workflow closed, or had closed already); its result says why. Not
        `join_existing`: None if the request id names a workflow already (nothing is asked
        of it)."""
        ask = _signed(
            key, PermissionRequest(client_id=uuid.uuid4().hex, workflow_id=request.workflow_id)
        )
        update_id = f"{REQUEST_PERMISSION_UPDATE}-{uuid.uuid4().hex}"
        handle = self._handle(request.workflow_id)
        operation: temporal_client.WithStartWorkflowOperation[Any, Outcome] = (
            temporal_client.WithStartWorkflowOperation(
                GOVERNED_ACTION_WORKFLOW,
                GovernedActionInput(request=request),
                result_type=Outcome,
                **self._start_options(request, join_existing=join_existing),
            )
        )
        try:
            permission: Permission = await self.temporal.execute_update_with_start_workflow(
                REQUEST_PERMISSION_UPDATE,
                ask,
                id=update_id,
                result_type=Permission,
                start_workflow_operation=operation,
            )
            return handle, permission
        except WorkflowAlreadyStartedError:
            return (handle, None) if join_existing else None
        except temporal_client.WorkflowUpdateFailedError:
            return handle, None
        except temporal_client.WorkflowUpdateRPCTimeoutOrCancelledError:
            _raise_if_cancelled()  # else a long wait (an approval) outlived the call
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return handle, None  # closed in the very task that would have answered
            if exc.status not in _TRANSIENT:
                raise
        finally:
            # The start's own result: settled by now; read so a failure isn't logged as lost.
            with contextlib.suppress(Exception):
                await operation.workflow_handle()
        # Carry on in two steps; the same update id makes the server answer the first ask.
        handle = await self._start(request)
        try:
            return handle, await _await_update(
                handle, REQUEST_PERMISSION_UPDATE, ask, Permission, update_id=update_id
            )
        except (temporal_client.WorkflowUpdateFailedError, RPCError):
            return handle, None

    async def _run_granted(
        self,
        handle: temporal_client.WorkflowHandle[Any, Outcome],
        claim_token: str,
        handler: Handler,
        params: dict[str, Any],
        key: AgentKey,
    ) -> Outcome:
        """Run the handler (this process holds the one permission) and report how it went,
        signed by the agent's key."""
        try:
            value = handler(params)
            if inspect.isawaitable(value):
                value = await value
            report = HandlerReport(claim_token=claim_token, succeeded=True, result=value)
        except Exception as exc:  # the agent's code failed: report it, the workflow audits it
            report = HandlerReport(
                claim_token=claim_token, succeeded=False, error=f"{type(exc).__name__}: {exc}"
            )
        return await self.report(handle, key, report)

    async def _result(self, handle: temporal_client.WorkflowHandle[Any, Outcome]) -> Outcome:
        try:
            return await handle.result()
        except temporal_client.WorkflowFailureError as exc:
            raise GovernanceError(f"{handle.id}: {exc.cause}") from exc

    # --- where a request stands -----------------------------------------------------------

    async def progress(self, workflow_id: str) -> Progress:
        progress: Progress = await self._handle(workflow_id).query(
            PROGRESS_QUERY, result_type=Progress
        )
        return progress

    async def wait_until(
        self,
        workflow_id: str,
        condition: Callable[[Progress], bool],
        *,
        within: timedelta = timedelta(seconds=30),
    ) -> Progress:
        """Poll the workflow's progress until `condition` holds (TimeoutError after `within`)."""
        async with asyncio.timeout(within.total_seconds()):
            while True:
                with contextlib.suppress(RPCError):  # the workflow may not exist yet
                    progress = await self.progress(workflow_id)
                    if condition(progress):
                        return progress
                await asyncio.sleep(0.05)

    async def decided(
        self, workflow_id: str, *, within: timedelta = timedelta(seconds=60)
    ) -> Progress:
        """Where the request stands once decided: awaiting approval (with its pending
        approval), awaiting execution, or closed (TimeoutError after `within`)."""
        async with asyncio.timeout(within.total_seconds()):
            return await self._poll_decided(workflow_id)

    async def _poll_decided(self, workflow_id: str) -> Progress:
        """Poll until the request is decided (`_decided`): quickly at first (a decision takes a
        few milliseconds), backing off to the 50 ms of `wait_until`."""
        pause = 0.002
        while True:
            with contextlib.suppress(RPCError):  # the workflow may not be visible yet
                progress = await self.progress(workflow_id)
                if _decided(progress):
                    return progress
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def outcome(self, request_id: str) -> Outcome:
        return await self._result(self._handle(workflow_id_for(request_id)))

    def _handle(self, workflow_id: str) -> temporal_client.WorkflowHandle[Any, Outcome]:
        return self.temporal.get_workflow_handle(workflow_id, result_type=Outcome)


async def _await_update(
    handle: temporal_client.WorkflowHandle[Any, Outcome],
    name: str,
    arg: Any,
    result_type: type[UpdateResult],
    *,
    update_id: str | None = None,
) -> UpdateResult:
    """Run an update that may wait for days (a human approval): each poll of the server has a
    deadline, so re-attach to the same update (same id: the server runs it once) until done."""
    update_id = update_id or f"{name}-{uuid.uuid4().hex}"
    while True:
        try:
            result: UpdateResult = await handle.execute_update(
                name, arg, id=update_id, result_type=result_type
            )
            return result
        except temporal_client.WorkflowUpdateRPCTimeoutOrCancelledError:
            _raise_if_cancelled()
            continue
        except RPCError as exc:
            if exc.status not in _TRANSIENT:
                raise
            await asyncio.sleep(1.0)  # the server is restarting: the update is durable


Signed = TypeVar("Signed", PermissionRequest, HandlerReport)


def _signed(key: AgentKey, message: Signed) -> Signed:
    """The agent's signature over a message to its own workflow."""
    signature = sign_bytes(key.private_key, canonical_bytes(message.signing_payload()))
    return message.model_copy(update={"signature": base64.b64encode(signature).decode()})


def _decided(progress: Progress) -> bool:
    """Past verification, and not between a round settling and the stage that follows it
    (awaiting approval with nobody left to ask: read again)."""
    if progress.stage is Stage.VERIFYING:
        return False
    return progress.stage is not Stage.AWAITING_APPROVAL or progress.pending is not None


def _raise_if_cancelled() -> None:
    """An update call ends the same way when its poll times out and when our caller gave up
    waiting; only the second must stop us."""
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError from None


def _tool_activity(action: str, fn: ToolFunction) -> Callable[[ToolCall], Awaitable[ToolResult]]:
    @activity.defn(name=tool_activity(action))
    async def run_tool(call: ToolCall) -> ToolResult:
        return ToolResult(result=await fn(call.params))

    return run_tool
