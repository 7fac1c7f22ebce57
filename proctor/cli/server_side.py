"""The CLI's one door to worker/: the processes the `proctor` command starts.

The CLI is the top floor and may import anything (ARCHITECTURE.md). Every import of worker/ it
makes is here, so the direction is plain, and the import-linter contract `processes` lets no
other CLI module import worker/. The imports wait until a command runs a process: loading
worker/ (aiohttp, slack-sdk, Bolt, the workflows and activities) costs every `proctor` command
about 0.2 s of CPU, +40% on `proctor --help` (0.55 s → 0.76 s, measured for issue 16), and
tests/proctor/cli/test_server_side.py keeps it out of the commands that do not need it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import WorkflowHistory
    from temporalio.converter import DataConverter

    from proctor.settings import ProctorSettings
    from proctor_server.worker.codec_server import CodecEndpoint
    from proctor_server.worker.replay import ReplayReport


def configure_logging(config: ProctorSettings) -> None:
    """Log lines on stderr in the configured format and level, as the processes log."""
    from proctor_server.worker.observability import configure_logging as configure

    configure(config)


def run_stack(config: ProctorSettings) -> None:
    """The whole stack in the foreground: embedded Temporal and Postgres, worker, apps."""
    from proctor_server.worker.stack import up

    up(config)


async def run_worker(config: ProctorSettings) -> None:
    from proctor_server.worker.main import run_worker as run

    await run(config)


async def run_approvals_app(config: ProctorSettings) -> None:
    from proctor_server.worker.main import run_approvals_app as run

    await run(config)


def codec_endpoint(config: ProctorSettings, origins: Sequence[str]) -> CodecEndpoint:
    from proctor_server.worker.codec_server import endpoint_for

    return endpoint_for(config, origins)


def codec_served(endpoint: CodecEndpoint, host: str, port: int) -> AbstractAsyncContextManager[str]:
    """The codec endpoint listening on host:port; yields its URL."""
    from proctor_server.worker.codec_server import codec_served as served

    return served(endpoint, host, port)


def replay_all(
    histories: AsyncIterator[WorkflowHistory] | Iterable[WorkflowHistory],
    converter: DataConverter,
) -> AsyncIterator[ReplayReport]:
    """Each history replayed against today's workflow code, reported as it goes."""
    from proctor_server.worker.replay import replay_all as replay

    return replay(histories, converter)
