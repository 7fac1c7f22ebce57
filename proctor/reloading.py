"""Files re-read when they change, by a process that must never serve a broken version of them.

The one hot-reload mechanism (the policy directory, the approver directory): the files' state
(each one's name, size, mtime and ctime) is compared with the state last loaded; when it moved,
everything is loaded again, and only a complete load replaces what serves, in one reference
swap. A load that fails, for whatever reason, leaves the last good version serving and logs one
error; it is tried again only when the files change again. ctime moves on every write, even one
that restores an earlier mtime or size, so no write goes unseen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from proctor.errors import ProctorError

log = logging.getLogger(__name__)

T = TypeVar("T")

Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(path: Path, suffixes: frozenset[str] = frozenset()) -> Fingerprint:
    """The state of a file, or of every file under a directory whose suffix is in `suffixes`
    (all of them when empty): names, sizes, mtimes and ctimes. Nothing there is ()."""
    if path.is_dir():
        found = [(p, str(p.relative_to(path))) for p in sorted(path.rglob("*"))]
    else:
        found = [(path, path.name)]
    entries = []
    for file, name in found:
        if suffixes and file.suffix not in suffixes:
            continue
        try:
            if not file.is_file():
                continue
            stat = file.stat()
        except OSError:  # gone between the listing and now: the next look sees the rest
            continue
        entries.append((name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    return tuple(entries)


@dataclass(frozen=True)
class Reloaded(Generic[T]):
    """The files changed and loaded: `value` serves from now on, in place of `previous`."""

    value: T
    previous: T
    seen: Fingerprint


@dataclass(frozen=True)
class Refused(Generic[T]):
    """The files changed and did not load: `serving`, the last good version, still serves."""

    error: Exception
    serving: T
    seen: Fingerprint


class Reloading(Generic[T]):
    """`current()` is the last good load of `path`; `refresh()` loads it again when it changed.

    `version` names a loaded value (for the log) and says when a change left the content as it
    was: then nothing is swapped. Without it every good load is swapped in."""

    def __init__(
        self,
        path: Path,
        load: Callable[[Path], T],
        *,
        what: str,
        suffixes: frozenset[str] = frozenset(),
        version: Callable[[T], str] | None = None,
    ) -> None:
        self.path = path
        self.what = what
        self._load = load
        self._suffixes = suffixes
        self._version = version
        self.seen = fingerprint(path, suffixes)  # before loading: a write during it is seen
        self._current = load(path)  # a bad start raises: there is no good version to keep

    def current(self) -> T:
        return self._current

    def refresh(self) -> Reloaded[T] | Refused[T] | None:
        """Load again if the files changed; None when they did not (or their content did not)."""
        seen = fingerprint(self.path, self._suffixes)
        if seen == self.seen:
            return None
        self.seen = seen
        serving = self._current
        try:
            loaded = self._load(self.path)
        except Exception as exc:  # whatever breaks a load, the last good version keeps serving
            log.error(
                "%s change REJECTED, still serving %s (%s):\n%s",
                self.what,
                self._name(serving),
                self.path,
                exc if isinstance(exc, ProctorError) else f"{type(exc).__name__}: {exc}",
            )
            return Refused(exc, serving, seen)
        if self._version is not None and self._version(loaded) == self._version(serving):
            return None
        self._current = loaded
        log.warning(
            "%s reloaded from %s%s",
            self.what,
            self.path,
            f": {self._name(serving)} -> {self._name(loaded)}" if self._version else "",
        )
        return Reloaded(loaded, serving, seen)

    def _name(self, value: T) -> str:
        return self._version(value) if self._version is not None else "the last good version"
