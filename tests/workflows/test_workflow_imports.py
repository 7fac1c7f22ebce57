"""Workflow code stays deterministic because of what it can reach.

Workers run workflow code outside Temporal's sandbox (PROCTOR_WORKFLOW_SANDBOX is off by
default: the sandbox doubles the worker's CPU per action), so this static check, together with
the sandboxed replay of every recorded history (test_replay.py), is what keeps clocks, random
numbers and I/O out of `workflows/` on every path, recorded or not.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.py"))

ALLOWED_IN_WORKFLOWS = {
    "__future__",
    "asyncio",
    "contextlib",
    "collections.abc",
    "datetime",
    "typing",
    "pydantic",
    "temporalio",
    "temporalio.workflow",
    "temporalio.common",
    "temporalio.exceptions",
    "workflows.step_options",
    "proctor.contract",
    "proctor.models",
    "proctor.trust",
    "proctor.attestation",
}
"""Adding to this set is a review decision: the module must be pure (or, like asyncio and
datetime, used only through what Temporal makes deterministic)."""

NONDETERMINISTIC_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("asyncio", "get_event_loop"),
    ("asyncio", "to_thread"),
    ("asyncio", "run_in_executor"),
}
NONDETERMINISTIC_NAMES = {"open", "print", "input", "breakpoint", "id", "hash"}
"""`hash` of a str differs per process; `id` per object; the rest are I/O."""

IMPURE_IN_PROCTOR = {
    "asyncio",
    "asyncpg",
    "os",
    "pathlib",
    "random",
    "secrets",
    "socket",
    "subprocess",
    "threading",
    "time",
    "urllib",
    "http",
    "slack_sdk",
    "slack_bolt",
    "cryptography",
    "temporalio.client",
    "temporalio.activity",
    "logging",
}
"""What the proctor modules the workflows import must not import, directly or through
another proctor module."""

VERIFYING_ONLY = {"proctor.attestation": {"cryptography"}}
"""Reviewed exceptions: proctor.attestation imports cryptography to *verify* signatures (no
key generation, no signing, no randomness), which is pure and deterministic."""


def imported_modules(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.append((node.module, node.lineno))
    return found


def module_path(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.startswith(str(ROOT)):
        return None
    return Path(spec.origin)


def proctor_closure(names: set[str]) -> dict[str, list[tuple[str, int]]]:
    """Every proctor module reachable from `names`, with its imports."""
    seen: dict[str, list[tuple[str, int]]] = {}
    todo = [n for n in names if n.startswith("proctor")]
    while todo:
        name = todo.pop()
        if name in seen or (path := module_path(name)) is None:
            continue
        seen[name] = imported_modules(path)
        todo.extend(m for m, _ in seen[name] if m.startswith("proctor") and m not in seen)
    return seen


def stray_imports(path: Path) -> list[str]:
    return [
        f"{path.name}:{line} imports {name}"
        for name, line in imported_modules(path)
        if name not in ALLOWED_IN_WORKFLOWS
    ]


def nondeterministic_calls(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in NONDETERMINISTIC_NAMES:
            calls.append(f"{path.name}:{node.lineno} {func.id}()")
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (func.value.id, func.attr) in NONDETERMINISTIC_CALLS
        ):
            calls.append(f"{path.name}:{node.lineno} {func.value.id}.{func.attr}()")
    return calls


def impure_imports(reached: dict[str, list[tuple[str, int]]]) -> list[str]:
    return [
        f"{module} imports {name} (line {line})"
        for module, imports in reached.items()
        for name, line in imports
        if (name in IMPURE_IN_PROCTOR or name.split(".")[0] in IMPURE_IN_PROCTOR)
        and name.split(".")[0] not in VERIFYING_ONLY.get(module, set())
    ]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_modules_import_only_reviewed_modules(path: Path) -> None:
    assert stray_imports(path) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_modules_call_no_clock_or_io(path: Path) -> None:
    assert nondeterministic_calls(path) == []


def test_proctor_modules_reached_from_workflows_are_pure() -> None:
    reached = proctor_closure({name for path in WORKFLOWS for name, _ in imported_modules(path)})
    assert {"proctor.models", "proctor.contract", "proctor.trust", "proctor.attestation"} <= set(
        reached
    )
    assert impure_imports(reached) == []


def test_the_checks_catch_clocks_io_and_impure_helpers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\nfrom datetime import datetime\n"
        "def f():\n    return datetime.now(), open('x')\n"
    )
    assert stray_imports(bad) == ["bad.py:1 imports time"]
    assert nondeterministic_calls(bad) == ["bad.py:4 datetime.now()", "bad.py:4 open()"]
    assert impure_imports({"proctor.helper": [("asyncpg", 3), ("pydantic", 4)]}) == [
        "proctor.helper imports asyncpg (line 3)"
    ]
