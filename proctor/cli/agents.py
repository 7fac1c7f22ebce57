"""`proctor agent …`: register agents (private key to a file, public key to Postgres)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from proctor.cli.common import database, fail, run_async
from proctor.models import AgentStatus
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore, validate_registration


@click.group("agent")
def agent_group() -> None:
    """Register and inspect agents."""


@agent_group.command("create")
@click.argument("agent_id")
@click.option("--role", required=True, help="What policies see as agent.role.")
@click.option("--owner", required=True, help="Email of the human responsible for the agent.")
@click.option("--key-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (mode 0600; never sent to the server).")
@click.option("--algorithm", type=click.Choice(["ed25519", "rsa-2048"]), default="ed25519",
              show_default=True)
@click.option("--name", "display_name", help="Display name (default: the id).")
@run_async
async def create(agent_id: str, role: str, owner: str, key_out: Path, algorithm: str,
                 display_name: str | None) -> None:
    """Create AGENT_ID with a fresh key pair."""
    validate_registration(agent_id, role, owner)
    if key_out.exists():
        fail(f"{key_out} exists: choose another --key-out (keys are never overwritten)")
    key = AgentKey.generate(agent_id, algorithm)  # type: ignore[arg-type]
    passphrase = os.environ.get("PROCTOR_KEY_PASSPHRASE")
    # The key file first (it fails on an unwritable path before anything is registered);
    # if registration then fails, the file goes: nothing is left half-done either way.
    key.save(key_out, passphrase=passphrase.encode() if passphrase else None)
    try:
        async with database() as pool:
            info = await AgentStore(pool).register(
                agent_id, role=role, owner=owner, public_key_pem=key.public_key_pem,
                display_name=display_name)
    except BaseException:
        key_out.unlink(missing_ok=True)
        raise
    click.echo(f"created agent {info.agent_id} (role {info.role}, owner {info.owner}, "
               f"{algorithm}); private key written to {key_out} (mode 0600)")


@agent_group.command("list")
@run_async
async def list_agents() -> None:
    """Registered agents with status and trust score."""
    async with database() as pool:
        agents = await AgentStore(pool).list()
    if not agents:
        click.echo("no agents registered (proctor agent create …)")
    for a in agents:
        click.echo(f"{a.agent_id:32} {a.status.value:9} trust {a.trust_score:5.1f}  "
                   f"role {a.role}  owner {a.owner}")


@agent_group.command("revoke")
@click.argument("agent_id")
@run_async
async def revoke(agent_id: str) -> None:
    """Refuse every further request from AGENT_ID."""
    async with database() as pool:
        info = await AgentStore(pool).set_status(agent_id, AgentStatus.REVOKED)
    click.echo(f"agent {info.agent_id} is {info.status.value}")
