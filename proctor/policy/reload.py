"""Hot reload: pick up changed policy files without a restart, never serve a broken set.

The directory is polled through the shared reloader (`proctor.reloading`: names, sizes, mtimes,
ctimes); on a change the whole set is loaded and compiled again. If that fails, for whatever
reason, the previous set keeps serving and the problems are logged and reported; running
workflows are unaffected either way, since each recorded its own decision.

Every swap and every rejection is reported as an event that carries `change`: the digest of the
directory's state as this process saw it. Two workers reading one directory see the same state
for the same write (ctime moves on every write, even one that restores old mtimes), so their
reports of it are one event; each new write, even back to an earlier content (A→B→A→B), is a
new one. A report that fails stays pending and is retried, unchanged, on the next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from proctor.canonical import digest
from proctor.policy.decide import PolicyEngine
from proctor.policy.loader import PolicyError, PolicyProblem, load_policy_dir
from proctor.reloading import Fingerprint, Refused, Reloaded, Reloading

log = logging.getLogger(__name__)

POLICY_SUFFIXES = frozenset({".yaml", ".yml"})


@dataclass(frozen=True)
class Swap:
    """A policy set now serving: `previous` is the version it replaced (None at start)."""

    engine: PolicyEngine
    previous: str | None
    change: str


@dataclass(frozen=True)
class Rejection:
    """A change refused whole; `serving` keeps serving."""

    problems: tuple[PolicyProblem, ...]
    serving: str
    change: str


OnLoaded = Callable[[Swap], Awaitable[None]]
OnRejected = Callable[[Rejection], Awaitable[None]]


def change_id(seen: Fingerprint) -> str:
    """The same in every process that saw the same state (numbers as text: they exceed the
    integers canonical JSON allows)."""
    return digest([[str(part) for part in entry] for entry in seen])[:32]


class ReloadingPolicy:
    """The policy set in force; `current` is what activities call on every decision."""

    def __init__(
        self,
        directory: Path,
        *,
        on_loaded: OnLoaded | None = None,
        on_rejected: OnRejected | None = None,
    ) -> None:
        self.directory = directory
        self._on_loaded = on_loaded
        self._on_rejected = on_rejected
        self._files = Reloading(  # a bad start is fatal
            directory,
            _load,
            what="policy",
            suffixes=POLICY_SUFFIXES,
            version=lambda engine: engine.version,
        )
        self._unreported: list[Swap | Rejection] = []
        _log_remarks(self.current())

    def report_to(self, on_loaded: OnLoaded, on_rejected: OnRejected) -> None:
        """Where loads and rejections are reported from now on (e.g. the audit log)."""
        self._on_loaded = on_loaded
        self._on_rejected = on_rejected

    def current(self) -> PolicyEngine:
        return self._files.current()

    async def announce(self) -> None:
        """Report the set loaded at start (e.g. to the audit log); raises if that fails."""
        self._unreported.append(Swap(self.current(), None, change_id(self._files.seen)))
        await self._report()

    async def check(self) -> bool:
        """Reload if the files changed; True when a new version was swapped in. Reports that
        failed before are retried first; one failing now is logged and kept for next time."""
        await self._report_logged()
        outcome = self._files.refresh()
        if outcome is None:
            return False
        change = change_id(outcome.seen)
        if isinstance(outcome, Refused):
            problems = _problems(outcome.error, self.directory)
            self._unreported.append(Rejection(problems, outcome.serving.version, change))
        else:
            _log_remarks(outcome.value)
            self._unreported.append(Swap(outcome.value, outcome.previous.version, change))
        await self._report_logged()
        return isinstance(outcome, Reloaded)

    async def watch(self, interval: float = 2.0) -> None:
        """Poll until cancelled; a failing check is logged, never stops the watch."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:
                log.exception(
                    "policy reload check failed; still serving %s", self.current().version
                )

    async def _report(self) -> None:
        """Report pending events in order; the first failure stops and keeps the rest."""
        while self._unreported:
            event = self._unreported[0]
            if isinstance(event, Swap) and self._on_loaded is not None:
                await self._on_loaded(event)
            elif isinstance(event, Rejection) and self._on_rejected is not None:
                await self._on_rejected(event)
            self._unreported.pop(0)

    async def _report_logged(self) -> None:
        try:
            await self._report()
        except Exception:
            log.exception(
                "could not report %d policy event(s); retrying at the next check",
                len(self._unreported),
            )


def _load(directory: Path) -> PolicyEngine:
    return PolicyEngine(load_policy_dir(directory))


def _problems(exc: Exception, directory: Path) -> tuple[PolicyProblem, ...]:
    if isinstance(exc, PolicyError):
        return tuple(exc.problems)
    return (
        PolicyProblem(
            str(directory), 0, "policy", f"could not load: {type(exc).__name__}: {exc}"[:500]
        ),
    )


def _log_remarks(engine: PolicyEngine) -> None:
    for finding in engine.findings:
        log.warning("policy %s: %s", engine.version, finding)
    for note in engine.notes:
        log.warning("policy %s: note: %s", engine.version, note)
