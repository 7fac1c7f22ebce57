"""The folders workflows/, activities/ and worker/ install as proctor_server.*, never as
top-level packages of their own (generic names that would collide in site-packages): through
links in proctor_server/ that are relative, so a clone, a wheel build and the image follow them.
"""

from __future__ import annotations

import os
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FOLDERS = ("workflows", "activities", "worker")
INCLUDE: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "packages"
]["find"]["include"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_folder_is_linked_into_proctor_server_relatively(folder: str) -> None:
    link = ROOT / "proctor_server" / folder
    assert link.is_symlink()
    assert os.readlink(link) == f"../{folder}"
    assert (link / "__init__.py").is_file()


def test_the_wheel_takes_proctor_and_proctor_server_only() -> None:
    """setuptools' find matches `include` against dotted package names, as fnmatch does."""
    assert any(fnmatchcase("proctor_server.worker.main", pattern) for pattern in INCLUDE)
    assert any(fnmatchcase("proctor.cli", pattern) for pattern in INCLUDE)
    for folder in FOLDERS:
        assert not any(fnmatchcase(folder, pattern) for pattern in INCLUDE), folder
        assert not any(fnmatchcase(f"{folder}.main", pattern) for pattern in INCLUDE), folder
