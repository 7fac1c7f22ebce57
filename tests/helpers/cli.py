"""Running the `proctor` command as a user does: a subprocess of the installed entry point."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

PROCTOR = str(Path(sys.executable).parent / "proctor")


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROCTOR, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def arun(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, args, env, cwd)
