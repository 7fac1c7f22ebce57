"""Governed durable tools for Temporal's OpenAI Agents plugin.

Under the plugin (`temporalio.openai_agents`, formerly `temporalio.contrib.openai_agents`) an
agent runs inside a workflow and its tools are activities (`activity_as_tool(fn, ...)`). A
governed activity's body is one Proctor request, run in the activity's worker once allowed.
Its request id comes from the agent, the calling workflow and the activity id, which stay the
same across the activity's retries: a worker that died while an approval was pending is
replaced by a retry that joins the same request, takes the permission and runs the tool once.
Give the activity a `start_to_close_timeout` long enough for an approval, and a
`heartbeat_timeout`: the body heartbeats while it waits, so a dead worker is noticed soon.

Two ways to wire it: `activity_as_tool(governed_activity(fn, key=...))` in the workflow, or
(keeping the agent's key and Proctor's connection out of workflow code and its sandbox) the
workflow's `activity_as_tool(fn)` over the plain `@activity.defn fn`, and the worker registering
`governed_activity(fn, key=...)`, which takes fn's activity name. Either way the activity asks
Proctor through Proctor's own client: the plugin's client carries the plugin's data converter.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from temporalio import activity

from proctor.client import Client
from proctor.errors import ActionNotCompleted, InputError
from proctor.integrations import Governor, derive_request_id, tool_action, verdict_text
from proctor.signing import AgentKey


def governed_activity(
    fn: Callable[..., Any],
    *,
    key: AgentKey,
    client: Client | None = None,
    action: str | None = None,
    name: str | None = None,
) -> Callable[..., Any]:
    """`fn` (sync or async, returning the tool's output text) as a Temporal activity that runs
    it only once Proctor allows it; otherwise the activity returns the verdict, one line for
    the model. Register the returned activity on a worker; pass it (or `fn` itself, when `fn`
    is already an `@activity.defn` of the same name) to `activity_as_tool`.

    `client` is Proctor's own connection (its data converter), never the plugin's worker
    client; omitted, `Client.connect()` on first use."""
    governor = Governor(key, client)
    activity_name = name or _activity_name(fn)
    governed_action = action or tool_action(activity_name)
    signature = inspect.signature(fn)
    # A sync tool runs on a thread, as Temporal runs sync activities: never on the worker's
    # event loop, where it would stop the heartbeat (and every other activity) while it runs.
    run = fn if inspect.iscoroutinefunction(fn) else functools.partial(asyncio.to_thread, fn)

    # `updated=()`: an `@activity.defn` fn's definition is not copied onto the governed one.
    @functools.wraps(fn, updated=())
    async def governed(*args: Any, **kwargs: Any) -> Any:
        info = activity.info()
        if not info.workflow_id or not info.workflow_run_id:
            raise InputError(f"{governed_action}: a governed activity runs only in a workflow")
        params = dict(signature.bind(*args, **kwargs).arguments)
        # The run, not only the workflow id: activity ids start again at 1 in every run (a
        # continue-as-new, a reused workflow id), while a retry keeps its run's.
        request_id = derive_request_id(
            key.agent_id, info.workflow_id, info.workflow_run_id, info.activity_id
        )
        try:
            async with _heartbeating(info.heartbeat_timeout):
                return await governor.call(governed_action, run, params, request_id=request_id)
        except ActionNotCompleted as verdict:
            return verdict_text(verdict, governed_action)

    return activity.defn(name=activity_name)(governed)


def _activity_name(fn: Callable[..., Any]) -> str:
    """The name `fn` already has as an `@activity.defn` (what a workflow calls it by), else its
    own: the governed activity replaces it under that name on a worker."""
    definition = activity._Definition.from_callable(fn)
    return definition.name if definition and definition.name else fn.__name__


@contextlib.asynccontextmanager
async def _heartbeating(heartbeat_timeout: timedelta | None) -> AsyncIterator[None]:
    """Heartbeat while the call waits (an approval may take days), when the activity has a
    heartbeat timeout: a worker that dies is then noticed within it, not at start-to-close."""
    if not heartbeat_timeout:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(heartbeat_timeout.total_seconds() / 3)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
