"""A governed call's result as the caller's own type: the function's value itself when this
process ran it, else the recorded JSON validated back into the type the caller names."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from proctor.models import HandlerReport, Outcome

T = TypeVar("T")

_NO_TYPE: tuple[object, ...] = (None, Any, type(None), inspect.Signature.empty, object)


def as_json(value: object) -> Any:
    """What Proctor signs and records of a value: its JSON form, anything JSON cannot hold
    as its repr."""
    return to_jsonable_python(value, fallback=repr)


def as_type(value: object, result_type: Any) -> Any:
    """`value` validated into `result_type` (unchanged when no type is named)."""
    if result_type in _NO_TYPE:
        return value
    return _adapter(result_type).validate_python(value)


def return_type(fn: Callable[..., object]) -> Any:
    """What `fn` says it returns (an async function's awaited type), or None if it says
    nothing usable."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: the caller can name the type
        return None
    returned = hints.get("return")
    origin = typing.get_origin(returned)
    if origin is not None and origin in (Awaitable, typing.Coroutine):
        returned = typing.get_args(returned)[-1]
    return returned


@lru_cache(maxsize=256)
def _cached_adapter(result_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(result_type)


def _adapter(result_type: Any) -> TypeAdapter[Any]:
    try:
        return _cached_adapter(result_type)
    except TypeError:  # an unhashable type expression
        return TypeAdapter(result_type)


class LocalRun(Generic[T]):
    """One governed call of `fn(**arguments)` in this process: runs it with the caller's own
    objects (not their JSON form), keeps what it returned or raised, and turns that and the
    workflow's outcome into the call's answer."""

    def __init__(
        self, fn: Callable[..., T] | Callable[..., Awaitable[T]], arguments: Mapping[str, Any]
    ) -> None:
        self.fn = fn
        self.arguments = dict(arguments)
        self.ran = False
        self.value: T | None = None
        self.error: Exception | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The arguments as the request signs them."""
        return dict(as_json(self.arguments))

    def start(self) -> Awaitable[Any] | None:
        """Call `fn` in the calling thread; an async `fn`'s awaitable is returned for the
        caller to finish with `finish`."""
        self.ran = True
        try:
            value = self.fn(**self.arguments)
        except Exception as exc:
            self.error = exc
            return None
        if inspect.isawaitable(value):
            return value
        self.value = value
        return None

    async def finish(self, pending: Awaitable[Any]) -> None:
        try:
            self.value = typing.cast(T, await pending)
        except Exception as exc:
            self.error = exc

    async def invoke(self) -> None:
        """Run `fn` to the end, keeping its value or its exception."""
        pending = self.start()
        if pending is not None:
            await self.finish(pending)

    def report(self, claim_token: str) -> HandlerReport:
        """How the run went, for the workflow (unsigned)."""
        if self.error is not None:
            error = f"{type(self.error).__name__}: {self.error}"
            return HandlerReport(claim_token=claim_token, succeeded=False, error=error)
        return HandlerReport(claim_token=claim_token, succeeded=True, result=as_json(self.value))

    def answer(self, outcome: Outcome, result_type: Any = None) -> T:
        """`fn`'s own value when it ran here; its own exception when it failed here; the typed
        `ActionNotCompleted` for any other ending; else the recorded result in the caller's
        type (`result_type`, default `fn`'s return annotation)."""
        if self.error is not None:
            self.error.add_note(f"recorded by Proctor as failed: {outcome.workflow_id}")
            raise self.error
        if self.ran and outcome.ok:
            return typing.cast(T, self.value)
        outcome.raise_for_status()
        return typing.cast(T, as_type(outcome.result, result_type or return_type(self.fn)))
