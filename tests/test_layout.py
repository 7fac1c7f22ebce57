"""The test suite's own layout holds.

Tests share code through tests/helpers/ only: nothing under tests/ imports a test module
(`test_*.py`: editing one test file would break another, and a `test_*` function imported runs
twice), a conftest (pytest loads conftests itself, folder by folder, and only fixtures belong
there) or any other module of tests/ outside tests/helpers/ (a helper kept beside the tests that
first used it is found by nobody else). Helpers import helpers.

And tests/ mirrors the code: a folder of tests sits where the folder it tests does
(tests/proctor/stores/ for proctor/stores/), apart from the suite's own folders.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = TESTS.parent
HELPERS = "tests.helpers"
OWN_FOLDERS = {"e2e", "helpers", "histories"}
"""Folders of the suite itself: end-to-end runs across every package, the shared helpers, the
recorded histories."""


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(
    tree: ast.Module, module: str, is_package: bool, root: Path
) -> Iterator[tuple[int, str]]:
    """(line, module) for every import anywhere in the file, relative ones resolved; `from
    package import name` imports `package.name` when that is a module, else `package`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if is_module(submodule, root) else base


def forbidden(target: str, root: Path) -> bool:
    """Whether importing `target` breaks the rule: a module of tests/ that is a test module, a
    conftest, or not a helper."""
    parts = target.split(".")
    if parts[0] != "tests" or not is_module(target, root):
        return False
    if any(part == "conftest" or part.startswith("test_") for part in parts):
        return True
    return target not in ("tests", HELPERS) and not target.startswith(f"{HELPERS}.")


def violations(root: Path) -> list[str]:
    """`path:line imports module` for every import of tests/ that breaks the rule."""
    found = []
    for path in sorted((root / "tests").rglob("*.py")):
        module = module_name(path, root)
        tree = ast.parse(path.read_text(), str(path))
        for line, target in imported(tree, module, path.name == "__init__.py", root):
            if forbidden(target, root):
                found.append(f"{path.relative_to(root)}:{line} imports {target}")
    return sorted(set(found))


def unmirrored(root: Path) -> list[str]:
    """Folders of test modules under tests/ with no folder of the same path in the code."""
    tests = root / "tests"
    folders = {path.parent.relative_to(tests) for path in tests.rglob("test_*.py")}
    return sorted(
        str(folder)
        for folder in folders
        if folder.parts and folder.parts[0] not in OWN_FOLDERS and not (root / folder).is_dir()
    )


def test_tests_import_only_helpers() -> None:
    assert violations(ROOT) == []


def test_test_folders_mirror_the_code() -> None:
    assert unmirrored(ROOT) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_see_a_planted_violation(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/conftest.py": "DatabaseFactory = object\n",
            "tests/helpers/__init__.py": "",
            "tests/helpers/harness.py": "from tests.helpers.network import free_port\n",
            "tests/helpers/network.py": "def free_port() -> int: ...\n",
            "tests/helpers/slack.py": "from tests.e2e.test_a import tool\n",
            "tests/e2e/__init__.py": "",
            "tests/e2e/shared.py": "X = 1\n",
            "tests/e2e/test_a.py": (
                "import os\n"
                "from tests.helpers import harness\n"
                "from tests.helpers.harness import free_port\n"
                "from tests import helpers\n"
                "def tool() -> None:\n"
                "    from tests.e2e.test_b import other\n"
            ),
            "tests/e2e/test_b.py": (
                "from . import test_a\n"
                "from .shared import X\n"
                "import tests.conftest\n"
                "from tests.conftest import DatabaseFactory\n"
                "def other() -> None: ...\n"
            ),
            "tests/orphans/test_c.py": "",
            "proctor/stores/__init__.py": "",
            "tests/proctor/stores/test_d.py": "",
        },
    )
    assert violations(tmp_path) == [
        "tests/e2e/test_a.py:6 imports tests.e2e.test_b",
        "tests/e2e/test_b.py:1 imports tests.e2e.test_a",
        "tests/e2e/test_b.py:2 imports tests.e2e.shared",
        "tests/e2e/test_b.py:3 imports tests.conftest",
        "tests/e2e/test_b.py:4 imports tests.conftest",
        "tests/helpers/slack.py:1 imports tests.e2e.test_a",
    ]
    assert unmirrored(tmp_path) == ["orphans"]
