"""`proctor delegate`: sign a delegation link from the shell and write the chain as JSON.

A human roots a chain with their approver vote key (`--as`, the same key `proctor approve`
uses); an agent roots or extends one with its own key (`--agent-key`). The agent then passes
the file on: `Client.execute(..., delegation=load_chain("chain.json"))`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from proctor.approvals.keys import VoteSigner, provisioned_key_path
from proctor.cli.common import fail, settings
from proctor.delegation import dump_chain, extend_chain, load_chain
from proctor.errors import ProctorError
from proctor.models import DelegationLink
from proctor.policy.schema import parse_duration
from proctor.signing import AgentKey


@click.command("delegate")
@click.option("--to", "to", required=True, help="The agent the grant is for.")
@click.option(
    "--actions",
    "actions",
    required=True,
    multiple=True,
    help="An action pattern it may ask for (`*` wildcard); repeat for several.",
)
@click.option("--expires", required=True, help="How long the grant lasts (90s, 15m, 24h, 7d).")
@click.option("--as", "approver", help="Delegate as this human, with your approver vote key.")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your private vote key with --as (default: the one `proctor up` provisioned).",
)
@click.option(
    "--agent-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Delegate as an agent, with its private key (PROCTOR_KEY_PASSPHRASE if encrypted).",
)
@click.option(
    "--chain",
    "parent",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The chain to extend (a file this command wrote); the agent must be its last delegate.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the chain (default: standard output).",
)
def delegate(
    to: str,
    actions: tuple[str, ...],
    expires: str,
    approver: str | None,
    key: Path | None,
    agent_key: Path | None,
    parent: Path | None,
    output: Path | None,
) -> None:
    """Let agent --to ask for --actions until --expires, signed by you (--as) or an agent."""
    try:
        lasting = timedelta(seconds=parse_duration(expires))
    except ValueError as exc:
        fail(f"--expires: {exc}")
    try:
        chain = _chain(to, actions, lasting, approver, key, agent_key, parent)
    except ProctorError as exc:
        fail(str(exc))
    _write(chain, output)


def _chain(
    to: str,
    actions: tuple[str, ...],
    lasting: timedelta,
    approver: str | None,
    key: Path | None,
    agent_key: Path | None,
    parent: Path | None,
) -> tuple[DelegationLink, ...]:
    """Exactly one signer: a human roots a chain, an agent roots or extends one."""
    if (approver is None) == (agent_key is None):
        fail("give --as APPROVER (a human) or --agent-key PATH (an agent), not both")
    if key is not None and approver is None:
        fail("--key goes with --as")
    links = load_chain(parent) if parent is not None else ()
    signer: AgentKey | VoteSigner
    if agent_key is not None:
        signer = AgentKey.load(agent_key, passphrase=_passphrase())
    else:
        if links:
            fail("--chain: only the root of a chain may be a human (extend it with --agent-key)")
        signer = _approver_signer(approver or "", key)
    return extend_chain(signer, to=to, actions=actions, expires_in=lasting, parent=links)


def _approver_signer(approver: str, key: Path | None) -> VoteSigner:
    """The approver's vote key: `--key`, else the one `proctor up` provisioned."""
    path = key or provisioned_key_path(settings().state_dir, approver)
    if key is None and not path.exists():
        fail(f"no vote key for {approver}: give --key PEM")
    signer = VoteSigner.load(path)
    if signer.approver is None or signer.approver.casefold() != approver.strip().casefold():
        fail(f"{path} is the key of {signer.approver or signer.channel}, not of {approver}")
    return signer


def _passphrase() -> bytes | None:
    secret = settings().key_passphrase
    return secret.get_secret_value().encode() if secret else None


def _write(chain: tuple[DelegationLink, ...], output: Path | None) -> None:
    last = chain[-1]
    summary = (
        f"{last.principal} → agent:{last.delegate}: {', '.join(last.actions)} "
        f"until {last.expires_at.isoformat()} (chain of {len(chain)})"
    )
    if output is None:
        click.echo(dump_chain(chain), nl=False)
        click.echo(summary, err=True)
        return
    try:
        output.write_text(dump_chain(chain))
    except OSError as exc:
        fail(f"{output}: cannot write the chain: {exc.strerror}")
    click.echo(f"{summary}; written to {output}")
