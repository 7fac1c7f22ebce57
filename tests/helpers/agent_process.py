"""An agent as a real OS process: a script started with its own environment, its stdout read
line by line, SIGKILLed mid-wait (no cleanup at all, as when the machine dies) and started again.

The environment points the agent's `Client.connect()` at a test's Temporal server and task
queue, and `AgentKey.from_env()` at the agent's key; its state dir is empty, so no `proctor up`
stack (and no payload encryption) is found.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client as TemporalClient

from proctor import AgentKey
from proctor.contract import REQUEST_PERMISSION_UPDATE
from tests.helpers.harness import Harness, eventually

REPO = Path(__file__).parents[2]


def agent_env(
    temporal: TemporalClient, task_queue: str, key: AgentKey, folder: Path, **extra: str
) -> dict[str, str]:
    """This environment without Proctor's or Temporal's variables, plus what an agent process
    needs to reach `temporal` on `task_queue` as `key` (saved under `folder`, with an empty
    state dir)."""
    state = folder / "state"
    state.mkdir(parents=True, exist_ok=True)
    key_file = folder / f"{key.agent_id}.pem"
    if not key_file.exists():
        key.save(key_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "TEMPORAL_"))}
    return {
        **env,
        "TEMPORAL_ADDRESS": temporal.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "PROCTOR_TASK_QUEUE": task_queue,
        "PROCTOR_STATE_DIR": str(state),
        "PROCTOR_AGENT_KEY": str(key_file),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@dataclass
class AgentProcess:
    """`argv` (e.g. `python -c <code>`) run with `env`, from the repository's root: stdin and
    stdout are pipes, stderr goes to `log_path` (appended across restarts)."""

    env: dict[str, str]
    log_path: Path
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    lines: list[str] = field(default_factory=list)
    """Every stdout line read so far, across starts."""

    @classmethod
    def python(cls, code: str, env: dict[str, str], log_path: Path, *args: str) -> AgentProcess:
        """`code` run by this Python, `args` in its `sys.argv[1:]`."""
        return cls(env, log_path, [sys.executable, "-c", code, *args])

    async def start(self) -> AgentProcess:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=REPO,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        return self

    async def read_until(self, text: str, seconds: float = 30) -> str:
        """The first new stdout line containing `text` (AssertionError, with the process's
        stderr, if it exits or takes longer)."""
        assert self.process is not None and self.process.stdout is not None
        try:
            async with asyncio.timeout(seconds):
                while line := (await self.process.stdout.readline()).decode():
                    self.lines.append(line.rstrip("\n"))
                    if text in line:
                        return line.rstrip("\n")
        except TimeoutError:
            raise AssertionError(f"no line with {text!r} in {seconds}s:\n{self.log()}") from None
        code = await self.process.wait()
        raise AssertionError(f"exited {code} before printing {text!r}:\n{self.log()}")

    async def send(self, line: str) -> None:
        """Write `line` to the process's stdin (a script waiting for its cue reads it)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def wait(self, seconds: float = 30) -> int:
        """The exit code, once the process has ended by itself."""
        assert self.process is not None
        async with asyncio.timeout(seconds):
            if self.process.stdout is not None:
                self.lines.extend((await self.process.stdout.read()).decode().splitlines())
            return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL the process and everything it started: no cleanup, no goodbye."""
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def permission_asks(temporal: TemporalClient, workflow_id: str) -> int:
    """How many asks for the permission to run the workflow has accepted (one per process
    that asked, a crashed one's included)."""
    handle = temporal.get_workflow_handle(workflow_id)
    asks = 0
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes
            asks += accepted.accepted_request.input.name == REQUEST_PERMISSION_UPDATE
    return asks


async def kill_while_waiting_then_rejoin(
    gov: Harness,
    script: str,
    env: dict[str, str],
    folder: Path,
    args: Sequence[str],
    workflow_id: str,
) -> str:
    """The crash every adapter must survive: `script` (it prints `ready`, waits for `go` on
    stdin, then runs an agent whose escalated tool call is `workflow_id`) runs in a first
    process, which is SIGKILLed while the call awaits approval; a second process runs the same
    script again, joins the request (its ask reaches the same workflow), alice approves, and
    the second process's `tool said:` line is returned. Both processes are started (imports
    done) before the first is killed, to keep the test fast."""
    first = AgentProcess.python(script, env, folder / "first.log", *args)
    second = AgentProcess.python(script, env, folder / "second.log", *args)
    try:
        await asyncio.gather(first.start(), second.start())
        await asyncio.gather(first.read_until("ready"), second.read_until("ready"))
        await first.send("go")
        await gov.wait_for_stage(workflow_id, "awaiting_approval", seconds=30)
        await first.kill()
        await second.send("go")
        await eventually(
            lambda: _at_least(permission_asks(gov.proctor.temporal, workflow_id), 2), seconds=30
        )
        await gov.vote(workflow_id, "alice@example.com", approve=True)
        said = await second.read_until("tool said:")
        assert await second.wait() == 0, second.log()
        return said
    finally:
        await first.kill()
        await second.kill()


async def agent_events(gov: Harness, agent_id: str) -> list[tuple[str, str]]:
    """(workflow id, event type) of every ledger row about `agent_id`, in order."""
    rows = await gov.pool.fetch(
        "SELECT workflow_id, event_type FROM audit_log WHERE agent_id = $1 ORDER BY seq",
        agent_id,
    )
    return [(row["workflow_id"], row["event_type"]) for row in rows]


async def _at_least(count: Awaitable[int], minimum: int) -> bool:
    return await count >= minimum
