"""Packages made impossible to import, as if not installed: in this process, or (by its
source, `inspect.getsource(MissingPackages)`) in a script run as a subprocess."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import types
from collections.abc import Sequence


class MissingPackages(importlib.abc.MetaPathFinder):
    """Makes modules (and their submodules) impossible to import, as if not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def hides(self, module: str) -> bool:
        return any(module == name or module.startswith(f"{name}.") for name in self.names)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if self.hides(fullname):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None
