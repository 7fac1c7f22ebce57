"""Hot reload: pick up changed policy files without a restart, never serve a broken set.

The directory is polled (names, sizes, mtimes, ctimes); on a change the whole set is loaded and
compiled again. If that fails, for whatever reason, the previous set keeps serving and the
problems are logged and reported; running workflows are unaffected either way, since each
recorded its own decision.

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

log = logging.getLogger("proctor.policy")

Fingerprint = tuple[tuple[str, int, int, int], ...]


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


def fingerprint(directory: Path) -> Fingerprint:
    """What identifies the directory's state: each YAML file's name, size, mtime and ctime."""
    if not directory.is_dir():
        return ()
    entries = []
    for path in sorted(directory.rglob("*")):
        if path.suffix in (".yaml", ".yml") and path.is_file():
            try:
                stat = path.stat()
            except OSError:  # gone between the listing and now: the next poll sees the rest
                continue
            entries.append(
                (str(path.relative_to(directory)), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
            )
    return tuple(entries)


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
        self._seen = fingerprint(directory)
        self._engine = PolicyEngine(load_policy_dir(directory))  # a bad start is fatal
        self._unreported: list[Swap | Rejection] = []
        _log_remarks(self._engine)

    def report_to(self, on_loaded: OnLoaded, on_rejected: OnRejected) -> None:
        """Where loads and rejections are reported from now on (e.g. the audit log)."""
        self._on_loaded = on_loaded
        self._on_rejected = on_rejected

    def current(self) -> PolicyEngine:
        return self._engine

    async def announce(self) -> None:
        """Report the set loaded at start (e.g. to the audit log); raises if that fails."""
        self._unreported.append(Swap(self._engine, None, change_id(self._seen)))
        await self._report()

    async def check(self) -> bool:
        """Reload if the files changed; True when a new version was swapped in. Reports that
        failed before are retried first; one failing now is logged and kept for next time."""
        await self._report_logged()
        seen = fingerprint(self.directory)
        if seen == self._seen:
            return False
        self._seen = seen
        change = change_id(seen)
        try:
            engine = PolicyEngine(load_policy_dir(self.directory))
        except Exception as exc:  # whatever breaks a set, the set in force keeps serving
            problems = _problems(exc, self.directory)
            log.error(
                "policy change REJECTED, still serving %s:\n%s",
                self._engine.version,
                "\n".join(str(p) for p in problems),
            )
            self._unreported.append(Rejection(problems, self._engine.version, change))
            await self._report_logged()
            return False
        if engine.version == self._engine.version:
            return False
        log.warning("policy reloaded: %s -> %s", self._engine.version, engine.version)
        _log_remarks(engine)
        self._unreported.append(Swap(engine, self._engine.version, change))
        self._engine = engine
        await self._report_logged()
        return True

    async def watch(self, interval: float = 2.0) -> None:
        """Poll until cancelled; a failing check is logged, never stops the watch."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:
                log.exception("policy reload check failed; still serving %s", self._engine.version)

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
