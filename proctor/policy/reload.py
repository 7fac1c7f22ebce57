"""Hot reload: pick up changed policy files without a restart, never serve a broken set.

The directory is polled (names, sizes, mtimes); on a change the whole set is loaded and
compiled again. If that fails, the previous set keeps serving and the problems are logged and
reported; running workflows are unaffected either way, since each recorded its own decision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from proctor.policy.engine import PolicyEngine
from proctor.policy.loader import PolicyError, PolicyProblem, load_policy_dir

log = logging.getLogger("proctor.policy")

Fingerprint = tuple[tuple[str, int, int], ...]
OnLoaded = Callable[[PolicyEngine], Awaitable[None]]
OnRejected = Callable[[list[PolicyProblem]], Awaitable[None]]


def fingerprint(directory: Path) -> Fingerprint:
    entries = []
    for path in sorted(directory.rglob("*")):
        if path.suffix in (".yaml", ".yml") and path.is_file():
            stat = path.stat()
            entries.append((str(path.relative_to(directory)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class ReloadingPolicy:
    """The policy set in force; `current` is what activities call on every decision."""

    def __init__(self, directory: Path, *, on_loaded: OnLoaded | None = None,
                 on_rejected: OnRejected | None = None) -> None:
        self.directory = directory
        self._on_loaded = on_loaded
        self._on_rejected = on_rejected
        self._seen = fingerprint(directory) if directory.is_dir() else ()
        self._engine = PolicyEngine(load_policy_dir(directory))  # a bad start is fatal
        _log_remarks(self._engine)

    def report_to(self, on_loaded: OnLoaded, on_rejected: OnRejected) -> None:
        """Where loads and rejections are reported from now on (e.g. the audit log)."""
        self._on_loaded = on_loaded
        self._on_rejected = on_rejected

    def current(self) -> PolicyEngine:
        return self._engine

    async def announce(self) -> None:
        """Report the set loaded at start (e.g. to the audit log)."""
        if self._on_loaded is not None:
            await self._on_loaded(self._engine)

    async def check(self) -> bool:
        """Reload if the files changed; True when a new version was swapped in."""
        seen = fingerprint(self.directory) if self.directory.is_dir() else ()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            engine = PolicyEngine(load_policy_dir(self.directory))
        except PolicyError as exc:
            log.error("policy change REJECTED, still serving %s:\n%s", self._engine.version,
                      exc)
            if self._on_rejected is not None:
                await self._on_rejected(exc.problems)
            return False
        if engine.version == self._engine.version:
            return False
        log.warning("policy reloaded: %s -> %s", self._engine.version, engine.version)
        _log_remarks(engine)
        self._engine = engine
        if self._on_loaded is not None:
            await self._on_loaded(engine)
        return True

    async def watch(self, interval: float = 2.0) -> None:
        """Poll until cancelled; a failing callback is logged, never stops the watch."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:
                log.exception("policy reload check failed; still serving %s",
                              self._engine.version)


def _log_remarks(engine: PolicyEngine) -> None:
    for finding in engine.findings:
        log.warning("policy %s: %s", engine.version, finding)
    for note in engine.notes:
        log.warning("policy %s: note: %s", engine.version, note)
