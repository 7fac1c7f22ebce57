"""The `proctor` command loads worker/ only for the commands that run a process."""

from __future__ import annotations

import json
import subprocess
import sys

# The bare folder names too: the CLI must not reach the processes under those either.
PROCESS_CODE = ("proctor_server", "worker", "workflows", "activities")


def modules_loaded_by(code: str) -> list[str]:
    """The process-side modules a fresh interpreter holds after running `code`."""
    report = (
        "import json, sys; print(json.dumps(sorted(m for m in sys.modules"
        f" if m.split('.')[0] in {PROCESS_CODE!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_command_starts_without_the_processes() -> None:
    assert modules_loaded_by("import proctor.cli") == []


def test_the_check_sees_process_code_when_it_is_loaded() -> None:
    assert "proctor_server.worker.observability" in modules_loaded_by(
        "import proctor_server.worker.observability"
    )
