"""`proctor mcp-gateway` refusing to start: the config and `--http` are checked before anything
connects, so a mistake is a short message and exit 2 (no Temporal, no database, no traceback),
and nothing is written to stdout, which a stdio client reads as MCP."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run
from tests.helpers.missing_packages import MissingPackages

NOWHERE = {
    "PROCTOR_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "TEMPORAL_ADDRESS": "127.0.0.1:1",
}
"""Nothing listens there: a command that got as far as connecting would fail differently."""

VALID = "servers:\n  files: {command: [files-server]}\n"


def gateway(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["mcp-gateway", *args], {**NOWHERE, "PROCTOR_STATE_DIR": str(tmp_path)}, tmp_path)


def refused(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr's lines, once it is sure the command stopped on bad input (not on a bug)."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    return done.stderr.splitlines()


def test_a_config_with_one_problem_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text(VALID + "hide_denied_tool: false\n")
    assert refused(gateway(tmp_path, "--config", str(config))) == [
        f"error: {config}:3: hide_denied_tool: unknown field"
    ]


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "absent.yaml"
    assert refused(gateway(tmp_path, "--config", str(config))) == [
        f"error: {config}:0: file: No such file or directory"
    ]


@pytest.fixture(scope="module")
def several_problems(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """One run on a config with two problems, for the two tests below."""
    tmp_path = tmp_path_factory.mktemp("several")
    config = tmp_path / "mcp.yaml"
    config.write_text(VALID + "rejoin_window_seconds: -1\nmax_wait_seconds: 0\n")
    return config, refused(gateway(tmp_path, "--config", str(config)))


def test_a_config_with_several_problems_reports_each_at_its_line(
    several_problems: tuple[Path, list[str]],
) -> None:
    """What holds with or without `error: ` on every line (the test below)."""
    config, lines = several_problems
    assert [line.removeprefix("error: ") for line in lines] == [
        f"{config}:3: rejoin_window_seconds: Input should be greater than or equal to 0",
        f"{config}:4: max_wait_seconds: Input should be greater than 0",
    ]
    assert lines[0].startswith("error: ")


def test_a_config_with_several_problems_is_one_error_line_each(
    several_problems: tuple[Path, list[str]],
) -> None:
    config, lines = several_problems
    assert lines == [
        f"error: {config}:3: rejoin_window_seconds: Input should be greater than or equal to 0",
        f"error: {config}:4: max_wait_seconds: Input should be greater than 0",
    ]


@pytest.mark.parametrize("http", ["nonsense", "127.0.0.1", "127.0.0.1:70000"])
def test_a_bad_http_address_is_one_line(tmp_path: Path, http: str) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text(VALID)
    assert refused(gateway(tmp_path, "--config", str(config), "--http", http)) == [
        f"error: --http {http!r}: give HOST:PORT, e.g. 127.0.0.1:8765"
    ]


def test_the_config_is_checked_before_the_http_address(tmp_path: Path) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text("servers: {}\n")
    [line] = refused(gateway(tmp_path, "--config", str(config), "--http", "nonsense"))
    assert line.startswith(f"error: {config}:1: servers: ")


WITHOUT_MCP = """
import importlib.abc, importlib.machinery, sys, types
from collections.abc import Sequence
{finder}
sys.meta_path.insert(0, MissingPackages(["mcp", "mcp_types"]))
sys.argv = ["proctor", "mcp-gateway", "--config", {config!r}]
from proctor.cli_entry import main
main()
"""


def test_without_the_mcp_extra_the_command_says_what_to_install(tmp_path: Path) -> None:
    """The server side installed but not `proctor[mcp]`: one line, exit 2."""
    config = tmp_path / "mcp.yaml"
    config.write_text(VALID)
    script = WITHOUT_MCP.format(finder=inspect.getsource(MissingPackages), config=str(config))
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **NOWHERE, "PROCTOR_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused(done) == [
        "error: the MCP gateway needs the mcp extra (missing mcp): pip install 'proctor[mcp]'"
    ]
