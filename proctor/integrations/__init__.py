"""What every framework adapter shares: the agent's key and a client connected on first use
(`Governor`), the default action names, request ids that survive a restart, and the one line a
model is told when Proctor says no.

The adapters live beside this module (`proctor.integrations.langchain`, `.openai_agents`,
`.pydantic_ai`, `.fastapi`), each behind its extra (`pip install 'proctor[langchain]'`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

from proctor.client import Client
from proctor.errors import ActionNotCompleted, InputError
from proctor.models import Progress
from proctor.signing import AgentKey
from proctor.sync_client import SyncClient

T = TypeVar("T")

_VERBS = {
    "denied": "denied",
    "rejected": "rejected",
    "timed_out": "timed out waiting for approval of",
    "cancelled": "cancelled",
    "failed": "recorded a failure of",
    "unknown": "cannot tell whether this ran:",
}


def tool_action(tool_name: str) -> str:
    """The action a tool call is governed as, unless an adapter is told otherwise."""
    return f"tool:{tool_name}"


ActionNaming = Callable[[str], str] | Mapping[str, str]
"""An adapter's `action=`: a function from a tool's name to its action, or a mapping naming
some tools' actions (the others keep the default, `tool:<name>`)."""


def action_namer(naming: ActionNaming) -> Callable[[str], str]:
    """One function for both forms of `action=`."""
    if isinstance(naming, Mapping):
        overrides = dict(naming)
        return lambda name: overrides.get(name, tool_action(name))
    if callable(naming):
        return naming
    raise InputError(f"action= takes a function or a mapping of tool names, not {naming!r}")


def http_action(method: str, path_template: str) -> str:
    """The action an HTTP route is governed as, its path parameters written `:name` (action
    names hold no braces): `POST /refunds/{order_id}` is `http:POST:/refunds/:order_id`."""
    path = _PATH_PARAMETER.sub(r":\1", path_template)
    return f"http:{method.upper()}:{path}"


_PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
"""A path parameter as Starlette writes it, with an optional converter: `{id}`, `{id:int}`."""


def derive_request_id(*parts: str) -> str:
    """A request id that is the same whenever the same parts are (agent, thread, tool call):
    a run resumed after a crash joins the request it made instead of asking twice."""
    if not parts or not all(parts):
        raise ValueError("a derived request id needs non-empty parts")
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"d-{digest[:48]}"


def verdict_text(error: ActionNotCompleted, action: str) -> str:
    """One line for the model: what Proctor decided about `action`, by which rule, and why, so
    it can adapt instead of retrying blindly."""
    verb = _VERBS.get(error.status, error.status)
    why = error.error if error.status in ("failed", "unknown") and error.error else error.reason
    return f"Proctor {verb} {action} (rule {error.rule_id}): {why}"


class _DefaultConnection:
    """One connection, and one blocking twin on it, per process for every adapter given no
    client: governed tools built one by one share it instead of each connecting (and each
    starting a loop thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._sync: SyncClient | None = None

    async def client(self) -> Client:
        if self._client is None:
            connected = await Client.connect()
            with self._lock:
                if self._client is None:
                    self._client = connected
        return self._client

    def sync(self) -> SyncClient:
        with self._lock:
            if self._sync is None:
                self._sync = (
                    SyncClient(self._client) if self._client is not None else SyncClient.connect()
                )
                self._client = self._client or self._sync.client
            return self._sync

    def close(self) -> None:
        with self._lock:
            if self._sync is not None:
                self._sync.close()
            self._client = self._sync = None


_DEFAULT = _DefaultConnection()


class Governor:
    """The agent's key plus a client: what every adapter holds.

    Given a `client`, uses it; else the process's default connection, made like
    `Client.connect()` the first time any adapter needs it, from async or sync code alike.
    """

    def __init__(self, key: AgentKey, client: Client | None = None) -> None:
        self.key = key
        self._client = client
        self._sync: SyncClient | None = None
        self._lock = threading.Lock()

    async def client(self) -> Client:
        """The connected client (connecting now if this is the process's first use)."""
        return self._client if self._client is not None else await _DEFAULT.client()

    @property
    def sync(self) -> SyncClient:
        """The blocking twin on the same connection (a loop thread of its own)."""
        if self._client is None:
            return _DEFAULT.sync()
        with self._lock:
            if self._sync is None:
                self._sync = SyncClient(self._client)
            return self._sync

    @overload
    async def call(
        self,
        action: str,
        fn: Callable[..., Awaitable[T]],
        params: Mapping[str, Any],
        *,
        request_id: str | None = None,
        result_type: Any = None,
    ) -> T: ...

    @overload
    async def call(
        self,
        action: str,
        fn: Callable[..., T],
        params: Mapping[str, Any],
        *,
        request_id: str | None = None,
        result_type: Any = None,
    ) -> T: ...

    async def call(
        self,
        action: str,
        fn: Callable[..., Any],
        params: Mapping[str, Any],
        *,
        request_id: str | None = None,
        result_type: Any = None,
    ) -> Any:
        """`Client.call` as this agent."""
        client = await self.client()
        return await client.call(
            self.key, action, fn, params, request_id=request_id, result_type=result_type
        )

    @overload
    def call_sync(
        self,
        action: str,
        fn: Callable[..., Awaitable[T]],
        params: Mapping[str, Any],
        *,
        request_id: str | None = None,
        result_type: Any = None,
    ) -> T: ...

    @overload
    def call_sync(
        self,
        action: str,
        fn: Callable[..., T],
        params: Mapping[str, Any],
        *,
        request_id: str | None = None,
        result_type: Any = None,
    ) -> T: ...

    def call_sync(
        self,
        action: str,
        fn: Callable[..., Any],
        params: Mapping[str, Any],
        *,
        request_id: str | None = None,
        result_type: Any = None,
    ) -> Any:
        """`SyncClient.call` as this agent: from sync code, or inside a running loop."""
        return self.sync.call(
            self.key, action, fn, params, request_id=request_id, result_type=result_type
        )

    async def decide(self, action: str, params: Mapping[str, Any], *, request_id: str) -> Progress:
        """`Client.decide` as this agent: where the request stands once decided."""
        client = await self.client()
        return await client.decide(self.key, action, params, request_id=request_id)

    def decide_sync(self, action: str, params: Mapping[str, Any], *, request_id: str) -> Progress:
        return self.sync.decide(self.key, action, params, request_id=request_id)

    def close(self) -> None:
        """Stop the blocking twin's loop thread this governor started, if any (the default
        connection's stops at exit)."""
        if self._sync is not None:
            self._sync.close()


__all__ = [
    "ActionNaming",
    "Governor",
    "action_namer",
    "derive_request_id",
    "http_action",
    "tool_action",
    "verdict_text",
]
