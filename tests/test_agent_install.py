"""The agent side installs and runs with the base dependencies alone (temporalio, pydantic,
cryptography, rfc8785): proved by reading what its modules import, by an agent process in which
every server-only package is missing running a governed action, and by the `proctor` command
saying what to install instead of a traceback."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from proctor.cli_entry import MISSING_SERVER_SIDE, SERVER_PACKAGES, main
from tests.helpers.harness import Harness
from tests.helpers.missing_packages import MissingPackages

ROOT = Path(__file__).parents[1]
PYPROJECT = ROOT / "pyproject.toml"
BASE_DEPENDENCIES = {"temporalio", "pydantic", "cryptography", "rfc8785"}
"""Distribution names; each one's import name is the same."""
PINNED_BY_A_BASE_DEPENDENCY = {"pydantic_core"}
"""Imported by the agent side without being named: pydantic pins its exact version."""
IMPORT_NAMES = {"pyyaml": "yaml", "python_json_logger": "pythonjsonlogger"}
"""Distributions of the server extra imported under another name."""
AGENT_MODULES = (
    "proctor",
    "proctor.client",
    "proctor.sync_client",
    "proctor.signing",
    "proctor.models",
    "proctor.errors",
    "proctor.canonical",
    "proctor.contract",
    "proctor.attestation",
    "proctor.delegation",
    "proctor.connection",
    "proctor.temporal",
    "proctor.codec",
    "proctor.payload_keys",
    "proctor.integrations",
    "proctor.integrations.fastapi.headers",
)
"""What an agent imports; everything they reach inside proctor is walked too."""
GOVERNANCE_SIDE = ("proctor.settings", "proctor.cli", "proctor.db", "proctor.stores")


AGENT_SCRIPT = """
from __future__ import annotations
import asyncio, importlib.abc, importlib.machinery, json, sys, types
from collections.abc import Sequence
{finder}
sys.meta_path.insert(0, MissingPackages({missing!r}))

import proctor
import proctor.integrations
import proctor.sync_client


async def lookup_order(order_id: int) -> dict[str, int]:
    return {{"order_id": order_id, "items": 2}}


async def main() -> None:
    client = await proctor.Client.connect()
    key = proctor.AgentKey.from_env()
    result = await client.call(key, "tool:lookup_order", lookup_order, {{"order_id": 7}})
    try:
        await client.call(key, "tool:delete_customer", lookup_order, {{"order_id": 7}})
        denied = None
    except proctor.ActionDenied as error:
        denied = error.rule_id
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {missing!r})
    print(json.dumps({{"result": result, "denied_by": denied, "server_side_loaded": loaded}}))


asyncio.run(main())
"""


def agent_script() -> str:
    return AGENT_SCRIPT.format(
        finder=inspect.getsource(MissingPackages), missing=sorted(SERVER_PACKAGES)
    )


@contextmanager
def packages_missing(*names: str) -> Iterator[None]:
    """In this process: `names` cannot be imported until the block ends, and the command line
    (already imported by other tests, perhaps) is imported afresh; every module imported
    meanwhile is forgotten again."""
    finder = MissingPackages([*names])
    command_line = MissingPackages(["proctor.cli"])
    hidden = {
        module: sys.modules.pop(module)
        for module in list(sys.modules)
        if finder.hides(module) or command_line.hides(module)
    }
    before = set(sys.modules)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for module in set(sys.modules) - before:
            del sys.modules[module]
        sys.modules.update(hidden)


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0).lower()


def test_base_dependencies_are_the_agent_sides_four() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert {requirement_name(r) for r in project["dependencies"]} == BASE_DEPENDENCIES


def test_the_command_knows_the_server_extras_packages() -> None:
    """What `proctor` treats as "the server side is not installed": the import names of the
    `server` extra's distributions, every one."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    server = {requirement_name(r).replace("-", "_") for r in extras["server"]}
    assert {IMPORT_NAMES.get(name, name) for name in server} == SERVER_PACKAGES


def module_path(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def runtime_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Every module an import statement may load, skipping `if TYPE_CHECKING:` blocks;
    `from package import name` yields `package.name` too (it may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))


def reachable(roots: Sequence[str]) -> tuple[set[str], set[str]]:
    """(proctor modules, third-party top-level packages) the roots import, transitively;
    a module brings its parent packages (their `__init__` runs first)."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        path = module_path(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        tree = ast.parse(path.read_text(), str(path))
        for name in runtime_imports(tree, module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top == "proctor":
                pending.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return seen, third_party


def test_agent_side_modules_import_only_base_dependencies() -> None:
    missing = [module for module in AGENT_MODULES if module_path(module) is None]
    assert not missing, f"agent-side modules not found: {missing}"
    modules, third_party = reachable(AGENT_MODULES)
    allowed = BASE_DEPENDENCIES | PINNED_BY_A_BASE_DEPENDENCY
    assert third_party <= allowed, sorted(third_party - allowed)
    governance = sorted(m for m in modules if MissingPackages(GOVERNANCE_SIDE).hides(m))
    assert not governance, f"the agent side reaches the governance side: {governance}"


def test_the_import_walk_sees_a_server_package() -> None:
    """The walk above can fail: the server's settings module reaches pydantic-settings."""
    modules, third_party = reachable(["proctor.settings"])
    assert "proctor.temporal" in modules
    assert "pydantic_settings" in third_party


async def test_an_agent_without_the_server_side_runs_a_governed_action(
    gov: Harness, tmp_path: Path
) -> None:
    key = await gov.new_agent(role="framework")
    key_file = key.save(tmp_path / "agent.pem")
    temporal = gov.proctor.temporal
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "TEMPORAL_"))},
        "TEMPORAL_ADDRESS": temporal.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "PROCTOR_TASK_QUEUE": gov.task_queue,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
        "PROCTOR_AGENT_KEY": str(key_file),
    }
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        agent_script(),
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await agent.communicate()
    assert agent.returncode == 0, stderr.decode()
    assert json.loads(stdout) == {
        "result": {"order_id": 7, "items": 2},
        "denied_by": "framework-no-deletes",
        "server_side_loaded": [],
    }


def test_proctor_command_without_the_server_side_says_what_to_install(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with packages_missing(*SERVER_PACKAGES), pytest.raises(SystemExit) as leaving:
        main()
    assert leaving.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == MISSING_SERVER_SIDE.format(package="click") + "\n"
    assert "pip install 'proctor[server]'" in captured.err
    assert captured.out == ""


def test_proctor_command_lets_any_other_import_failure_through() -> None:
    """A module of proctor itself missing is a bug to show, not an install to suggest."""
    with packages_missing("proctor.cli.agents"), pytest.raises(ModuleNotFoundError) as failed:
        main()
    assert failed.value.name == "proctor.cli.agents"


async def test_proctor_command_with_the_server_side_runs_the_command_line() -> None:
    entry = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from proctor.cli_entry import main; main()",
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await entry.communicate()
    assert entry.returncode == 0, stderr.decode()
    assert "durable governance" in stdout.decode()


def test_the_image_installs_the_server_side() -> None:
    """Every compose service that runs `proctor` is built from this one Dockerfile."""
    installs = re.findall(r"pip install [^\n]*", (ROOT / "Dockerfile").read_text())
    assert installs == ['pip install --no-cache-dir ".[server]" \\']
