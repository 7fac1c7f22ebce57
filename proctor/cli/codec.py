"""`proctor payload-key create|rotate|list` and `proctor codec-server`: the keys that keep
secrets out of Temporal history, and the endpoint that lets operators read it anyway."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import click

from proctor import payload_keys
from proctor.cli.common import fail, settings
from proctor.cli.server_side import codec_endpoint, codec_served, configure_logging
from proctor.errors import ProctorError
from proctor.payload_keys import KeyRing, created_at
from proctor.settings import NotConfigured, ProctorSettings, payload_key_dir


@click.group("payload-key")
def payload_key_group() -> None:
    """AES-256 keys encrypting every payload in Temporal history (PROCTOR_PAYLOAD_KEY_DIR)."""


@payload_key_group.command("create")
@click.option(
    "--if-missing",
    is_flag=True,
    help="Succeed without a change when a ring is already there (a deployment's "
    "one-shot setup job).",
)
def create(if_missing: bool) -> None:
    """Create the key ring (once per deployment; `proctor up` does it for its own)."""
    directory = payload_key_dir(settings())
    if if_missing and payload_keys.exists(directory):
        ring = _or_fail(lambda: payload_keys.load(directory))
        click.echo(f"payload keys already in {directory}/ (current {ring.current})")
        return
    ring = _or_fail(lambda: payload_keys.create(directory))
    click.echo(f"created payload key {ring.current} in {directory}/ (files 0600)")
    click.echo(
        "Give this directory to every worker, agent and `proctor` command, and back it "
        "up: without it, encrypted history cannot be read."
    )


@payload_key_group.command("rotate")
def rotate() -> None:
    """Add a new key that encrypts from now on; older keys stay to decrypt old payloads.

    Processes sharing the directory pick the new key up the first time they meet a payload
    under it; restart them to make them encrypt with it."""
    directory = payload_key_dir(settings())
    ring = _or_fail(lambda: payload_keys.rotate(directory))
    click.echo(
        f"payload key {ring.current} now encrypts; {len(ring.keys) - 1} older key(s) "
        "still decrypt (never delete one while a history it wrote may be read)"
    )


@payload_key_group.command("list")
def list_keys() -> None:
    """The keys of the ring (ids and dates, never key material); `*` marks the current one."""
    directory = payload_key_dir(settings())
    ring = _or_fail(lambda: payload_keys.load(directory))
    click.echo(f"payload keys in {directory}/:")
    for key_id in sorted(ring.keys):
        mark = "*" if key_id == ring.current else " "
        click.echo(f" {mark} {key_id}  created {created_at(key_id):%Y-%m-%d %H:%M:%S} UTC")


def _or_fail(action: Callable[[], KeyRing]) -> KeyRing:
    """The ring `action` gives, or one line on stderr and exit 2."""
    try:
        return action()
    except (payload_keys.PayloadKeyError, OSError) as exc:
        fail(str(exc))


@click.command("codec-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, help="Port (default PROCTOR_CODEC_PORT).")
@click.option(
    "--ui-origin",
    "origins",
    multiple=True,
    metavar="URL",
    help="Origin of the Temporal UI allowed to call it (repeatable; default the "
    "embedded UI on 127.0.0.1 and localhost).",
)
def codec_server(host: str, port: int | None, origins: tuple[str, ...]) -> None:
    """Serve the codec endpoint for the Temporal UI and CLI (needs PROCTOR_CODEC_TOKEN).

    The UI: start it with `--ui-codec-endpoint http://HOST:PORT`, sign in once at
    http://HOST:PORT/login, and turn on 'Include cross-origin credentials' in its codec
    settings. The CLI: `temporal workflow show --codec-endpoint http://HOST:PORT
    --codec-auth "Bearer $PROCTOR_CODEC_TOKEN" -w ID`."""
    config = settings()
    configure_logging(config)
    try:
        asyncio.run(_serve(config, host, port, origins))
    except ProctorError as exc:
        fail(str(exc))


async def _serve(
    config: ProctorSettings, host: str, port: int | None, origins: tuple[str, ...]
) -> None:
    port = port if port is not None else config.codec_port
    if port is None:
        raise NotConfigured("no port for the codec endpoint: give --port or set PROCTOR_CODEC_PORT")
    endpoint = codec_endpoint(config, origins)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with codec_served(endpoint, host, port) as url:
        click.echo(f"codec endpoint at {url} (sign in at {url}/login); Ctrl-C stops it", err=True)
        await stop.wait()
