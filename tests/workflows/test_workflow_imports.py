"""Workflow code stays deterministic because of what it can reach.

Workers run workflow code outside Temporal's sandbox (PROCTOR_WORKFLOW_SANDBOX is off by
default: the sandbox doubles the worker's CPU per action), so static checks, together with the
sandboxed replay of every recorded history (test_replay.py), keep clocks, random numbers and I/O
out of `workflows/` on every path, recorded or not. The import-linter contract
`deterministic-workflows` (pyproject.toml, run by `./dev test`) forbids I/O, clock and service
modules however indirectly reached; this module checks what that contract cannot see: the
reviewed list of direct imports, the calls workflow code makes, and which parts of temporalio
(one package to import-linter) workflow code and the proctor modules it reaches take.
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
    "dataclasses",
    "datetime",
    "enum",
    "typing",
    "pydantic",
    "temporalio",
    "temporalio.workflow",
    "temporalio.common",
    "temporalio.exceptions",
    "proctor_server.workflows.step_options",
    "proctor_server.workflows.steps",
    "proctor_server.workflows.approval_round",
    "proctor.contract",
    "proctor.models",
    "proctor.trust",
    "proctor.attestation",
    "proctor.grants.scope",
}
"""Adding to this set is a review decision: the module must be pure (or, like asyncio and
datetime, used only through what Temporal makes deterministic)."""

WORKFLOW_SAFE_TEMPORALIO = {"temporalio.workflow", "temporalio.common", "temporalio.exceptions"}
"""The parts of temporalio workflow code may use; temporalio.client, .activity, .worker and
.service do I/O."""

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


def imported_modules(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.append((node.module, node.lineno))
    return found


def temporalio_modules(path: Path) -> list[tuple[str, int]]:
    """The temporalio modules `path` imports; `from temporalio import client` names
    temporalio.client."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(
                (a.name, node.lineno) for a in node.names if a.name.startswith("temporalio")
            )
        elif isinstance(node, ast.ImportFrom) and node.module == "temporalio":
            found.extend((f"temporalio.{a.name}", node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("temporalio."):
            found.append((str(node.module), node.lineno))
    return found


def module_path(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.startswith(str(ROOT)):
        return None
    return Path(spec.origin)


def proctor_closure(names: set[str]) -> dict[str, Path]:
    """Every proctor module reachable from `names`, with its file."""
    seen: dict[str, Path] = {}
    todo = [n for n in names if n.startswith("proctor")]
    while todo:
        name = todo.pop()
        if name in seen or (path := module_path(name)) is None:
            continue
        seen[name] = path
        todo.extend(m for m, _ in imported_modules(path) if m.startswith("proctor"))
    return seen


def stray_imports(path: Path) -> list[str]:
    return [
        f"{path.name}:{line} imports {name}"
        for name, line in imported_modules(path)
        if name not in ALLOWED_IN_WORKFLOWS
    ]


def unsafe_temporalio(path: Path, label: str) -> list[str]:
    return [
        f"{label}:{line} imports {name}"
        for name, line in temporalio_modules(path)
        if name not in WORKFLOW_SAFE_TEMPORALIO
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


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_modules_import_only_reviewed_modules(path: Path) -> None:
    assert stray_imports(path) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_modules_call_no_clock_or_io(path: Path) -> None:
    assert nondeterministic_calls(path) == []


def test_workflow_code_takes_only_the_workflow_side_of_temporalio() -> None:
    reached = proctor_closure({name for path in WORKFLOWS for name, _ in imported_modules(path)})
    assert {"proctor.models", "proctor.contract", "proctor.trust", "proctor.attestation"} <= set(
        reached
    )
    modules = {path.name: path for path in WORKFLOWS} | reached
    assert [
        problem for label, path in modules.items() for problem in unsafe_temporalio(path, label)
    ] == []


def test_the_checks_catch_clocks_io_and_the_client_side_of_temporalio(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\nfrom datetime import datetime\nfrom temporalio import client, workflow\n"
        "from temporalio.activity import heartbeat\n"
        "def f():\n    return datetime.now(), open('x')\n"
    )
    assert stray_imports(bad) == ["bad.py:1 imports time", "bad.py:4 imports temporalio.activity"]
    assert nondeterministic_calls(bad) == ["bad.py:6 datetime.now()", "bad.py:6 open()"]
    assert unsafe_temporalio(bad, "bad") == [
        "bad:3 imports temporalio.client",
        "bad:4 imports temporalio.activity",
    ]
