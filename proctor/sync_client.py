"""`SyncClient`: the blocking twin of `Client`, for sync code and for code that already runs
inside an event loop it cannot await from (a sync tool called by an async framework, a notebook).

It runs its own event loop on a daemon thread and blocks the calling thread on it, so it never
needs, nor disturbs, a loop the caller may be running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

from proctor.client import CallOptions, Client, Handler, StatusCallback, call_request
from proctor.models import DelegationLink, Outcome, Progress
from proctor.results import LocalRun
from proctor.signing import AgentKey

T = TypeVar("T")


class LoopThread:
    """An event loop of its own on a daemon thread: coroutines submitted from any other thread
    run there, one caller blocking per call."""

    def __init__(self, name: str = "proctor-sync-client") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _OPEN.add(self)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on this loop and wait for it (from any thread but this loop's)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("SyncClient called from its own loop: await the Client instead")
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("this SyncClient is closed")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()  # stop the work in the loop too: the caller gave up waiting
            raise

    def close(self) -> None:
        """Cancel what still runs, stop the loop and join its thread (idempotent)."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()
        _OPEN.discard(self)


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_OPEN: weakref.WeakSet[LoopThread] = weakref.WeakSet()


@atexit.register
def _close_open_loops() -> None:
    """Stop every loop thread before the interpreter finalises, so no Temporal call is left
    mid-flight on a thread the interpreter is tearing down."""
    for loop_thread in list(_OPEN):
        with contextlib.suppress(Exception):  # exiting anyway: close the others regardless
            loop_thread.close()


class SyncClient:
    """`Client`'s governed calls, blocking. Thread-safe; close it (or use `with`) when done."""

    def __init__(self, client: Client, *, loop_thread: LoopThread | None = None) -> None:
        """Wrap a connected `Client`; its calls run on this object's own loop thread."""
        self.client = client
        self._loop_thread = loop_thread or LoopThread()

    @classmethod
    def connect(
        cls,
        address: str | None = None,
        *,
        namespace: str | None = None,
        task_queue: str | None = None,
    ) -> SyncClient:
        """Connect the way `Client.connect()` does (the address, else TEMPORAL_ADDRESS, else
        the running `proctor up`)."""
        loop_thread = LoopThread()
        try:
            client = loop_thread.run(
                Client.connect(address, namespace=namespace, task_queue=task_queue)
            )
        except BaseException:
            loop_thread.close()
            raise
        return cls(client, loop_thread=loop_thread)

    @overload
    def call(
        self,
        key: AgentKey,
        action: str,
        fn: Callable[..., Awaitable[T]],
        params: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> T: ...

    @overload
    def call(
        self,
        key: AgentKey,
        action: str,
        fn: Callable[..., T],
        params: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> T: ...

    def call(
        self,
        key: AgentKey,
        action: str,
        fn: Callable[..., Any],
        params: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> Any:
        """`Client.call`, blocking. A sync `fn` runs in the calling thread (its context
        variables, thread locals and framework state as they are there); an async one on this
        client's loop."""
        run: LocalRun[Any] = LocalRun(fn, params or {})
        request = call_request(key, action, run.params, options)
        result_type = options.get("result_type")
        handle, claim_token = self._loop_thread.run(
            self.client.permission(
                request,
                key,
                rejoining=options.get("request_id") is not None,
                on_status=options.get("on_status"),
            )
        )
        if claim_token is None:
            return run.answer(self._loop_thread.run(self.client.result(handle)), result_type)
        pending = run.start()
        if pending is not None:
            self._loop_thread.run(run.finish(pending))
        outcome = self._loop_thread.run(self.client.report(handle, key, run.report(claim_token)))
        return run.answer(outcome, result_type)

    def execute(
        self,
        key: AgentKey,
        action: str,
        params: dict[str, Any],
        *,
        handler: Handler | None = None,
        request_id: str | None = None,
        execution_timeout: timedelta = timedelta(hours=1),
        triggered_by: str | None = None,
        on_status: StatusCallback | None = None,
        on_behalf_of: str | None = None,
        delegation: Sequence[DelegationLink] = (),
    ) -> Outcome:
        """`Client.execute`, blocking."""
        return self._loop_thread.run(
            self.client.execute(
                key,
                action,
                params,
                handler=handler,
                request_id=request_id,
                execution_timeout=execution_timeout,
                triggered_by=triggered_by,
                on_status=on_status,
                on_behalf_of=on_behalf_of,
                delegation=delegation,
            )
        )

    def decide(
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
        """`Client.decide`, blocking."""
        return self._loop_thread.run(
            self.client.decide(
                key,
                action,
                params,
                request_id=request_id,
                execution_timeout=execution_timeout,
                triggered_by=triggered_by,
                on_behalf_of=on_behalf_of,
                delegation=delegation,
                within=within,
            )
        )

    def outcome(self, request_id: str) -> Outcome:
        """`Client.outcome`, blocking: waits for the request's outcome."""
        return self._loop_thread.run(self.client.outcome(request_id))

    def progress(self, workflow_id: str) -> Progress:
        return self._loop_thread.run(self.client.progress(workflow_id))

    def close(self) -> None:
        """Stop this client's loop thread (calls still waiting are cancelled)."""
        self._loop_thread.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
