"""`proctor agent …`: register agents (private key to a file, public key to Postgres)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import click

from proctor.approvals.operator_client import OperatorClient
from proctor.canonical import sha256_hex
from proctor.cli.common import database, fail, proctor_client, run_async, settings
from proctor.models import AGENT_ID_PATTERN, AgentStatus, AuditEvent
from proctor.policy.schema import parse_duration
from proctor.signing import AgentKey, load_public_key
from proctor.stores.agents import AgentRecord, AgentStore, validate_registration
from proctor.stores.audit_log import AuditLog

AGENT_ID = re.compile(AGENT_ID_PATTERN)


@click.group("agent")
def agent_group() -> None:
    """Register and inspect agents."""


@agent_group.command("create")
@click.argument("agent_id")
@click.option("--role", required=True, help="What policies see as agent.role.")
@click.option("--owner", required=True, help="Email of the human responsible for the agent.")
@click.option(
    "--key-out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (mode 0600; never sent to the server).",
)
@click.option(
    "--algorithm", type=click.Choice(["ed25519", "rsa-2048"]), default="ed25519", show_default=True
)
@click.option("--name", "display_name", help="Display name (default: the id).")
@click.option(
    "--passphrase",
    "ask_passphrase",
    is_flag=True,
    help="Encrypt the private key with a passphrase typed at a prompt (or set "
    "PROCTOR_KEY_PASSPHRASE).",
)
@run_async
async def create(
    agent_id: str,
    role: str,
    owner: str,
    key_out: Path,
    algorithm: str,
    display_name: str | None,
    ask_passphrase: bool,
) -> None:
    """Create AGENT_ID with a fresh key pair."""
    validate_registration(agent_id, role, owner)
    if key_out.exists():
        fail(f"{key_out} exists: choose another --key-out (keys are never overwritten)")
    key = AgentKey.generate(agent_id, algorithm)  # type: ignore[arg-type]
    passphrase = _passphrase(ask_passphrase)
    # The key file first (it fails on an unwritable path before anything is registered);
    # if registration then fails, the file goes: nothing is left half-done either way.
    key.save(key_out, passphrase=passphrase)
    try:
        async with database() as pool:
            info = await AgentStore(pool).register(
                agent_id,
                role=role,
                owner=owner,
                public_key_pem=key.public_key_pem,
                display_name=display_name,
                trust_score=settings().initial_trust,
            )
    except BaseException:
        key_out.unlink(missing_ok=True)
        raise
    await _audit_admin(
        info.agent_id, "agent_registered", {"role": role, "owner": owner, "algorithm": algorithm}
    )
    click.echo(
        f"created agent {info.agent_id} (role {info.role}, owner {info.owner}, "
        f"{algorithm}); private key written to {key_out} (mode 0600)"
    )


@agent_group.command("list")
@run_async
async def list_agents() -> None:
    """Registered agents with status and trust score."""
    async with database() as pool:
        agents = await AgentStore(pool).list()
    if not agents:
        click.echo("no agents registered (proctor agent create …)")
    for a in agents:
        click.echo(
            f"{a.agent_id:32} {a.status.value:9} trust {a.trust_score:5.1f}  "
            f"role {a.role}  owner {a.owner}"
        )


@agent_group.command("register")
@click.argument("agent_id")
@click.option("--role", required=True)
@click.option("--owner", required=True)
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public key (RSA >= 2048 bits or Ed25519), e.g. an existing identity.",
)
@click.option("--name", "display_name")
@run_async
async def register(
    agent_id: str, role: str, owner: str, public_key: Path, display_name: str | None
) -> None:
    """Register AGENT_ID with a public key it already has (the private key stays with it)."""
    pem = _read_public_key(public_key)
    async with database() as pool:
        info = await AgentStore(pool).register(
            agent_id,
            role=role,
            owner=owner,
            public_key_pem=pem,
            display_name=display_name,
            trust_score=settings().initial_trust,
        )
    await _audit_admin(info.agent_id, "agent_registered", {"role": role, "owner": owner})
    click.echo(f"registered agent {info.agent_id} (role {info.role}, owner {info.owner})")


@agent_group.command("show")
@click.argument("agent_id")
@run_async
async def show(agent_id: str) -> None:
    """Identity, status, trust and keys of AGENT_ID (never a private key)."""
    record = await _registered(agent_id)
    info = record.info
    click.echo(
        f"{info.agent_id}  ({info.display_name})\n  role {info.role}, owner "
        f"{info.owner}\n  status {info.status.value}, trust {info.trust_score:g}"
        f"{' (autonomy blocked until recovery)' if info.autonomy_blocked else ''}\n"
        f"  key {record.key_algorithm} sha256:{_fingerprint(record.public_key_pem)}"
    )
    if record.previous_public_key_pem and record.previous_key_valid_until:
        click.echo(
            f"  previous key sha256:{_fingerprint(record.previous_public_key_pem)} "
            f"valid until {record.previous_key_valid_until.isoformat()}"
        )


@agent_group.command("rotate-key")
@click.argument("agent_id")
@click.option(
    "--key-out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the new private key (mode 0600).",
)
@click.option(
    "--algorithm", type=click.Choice(["ed25519", "rsa-2048"]), default="ed25519", show_default=True
)
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="How long the old key stays valid (e.g. 1h, 7d; 0s: refuse it at once).",
)
@click.option(
    "--passphrase",
    "ask_passphrase",
    is_flag=True,
    help="Encrypt the new private key with a passphrase typed at a prompt.",
)
@run_async
async def rotate_key(
    agent_id: str, key_out: Path, algorithm: str, grace: str, ask_passphrase: bool
) -> None:
    """A new key pair for AGENT_ID; the old key keeps working for the grace period."""
    period = timedelta(seconds=_grace_seconds(grace))
    await _registered(agent_id)  # before a key is made for nobody
    if key_out.exists():
        fail(f"{key_out} exists: choose another --key-out (keys are never overwritten)")
    key = AgentKey.generate(agent_id, algorithm)  # type: ignore[arg-type]
    key.save(key_out, passphrase=_passphrase(ask_passphrase))
    try:
        async with database() as pool:
            record = await AgentStore(pool).rotate_key(agent_id, key.public_key_pem, period)
    except BaseException:
        key_out.unlink(missing_ok=True)
        raise
    await _audit_admin(
        agent_id,
        "key_rotated",
        {
            "new_key": _fingerprint(record.public_key_pem),
            "previous_key": _fingerprint(record.previous_public_key_pem or ""),
            "previous_valid_until": (
                record.previous_key_valid_until.isoformat()
                if record.previous_key_valid_until
                else None
            ),
        },
    )
    click.echo(
        f"rotated the key of {agent_id}: new key in {key_out}; the old key is valid "
        f"until {record.previous_key_valid_until}"
    )


@agent_group.command("suspend")
@click.argument("agent_id")
@click.option("--reason", required=True)
@click.option("--as", "actor", required=True, help="Who suspends (kept in the audit log).")
@run_async
async def suspend(agent_id: str, reason: str, actor: str) -> None:
    """Refuse every request from AGENT_ID until it is reinstated."""
    await _set_status(agent_id, AgentStatus.SUSPENDED, reason, actor)


@agent_group.command("reinstate")
@click.argument("agent_id")
@click.option("--reason", required=True, help="Why the agent should act again.")
@click.option("--as", "requested_by", required=True, help="Who asks (cannot also approve).")
@click.option(
    "--score",
    type=click.FloatRange(1, 100),
    help="Trust score to return at (default: the policy's recovery threshold).",
)
@run_async
async def reinstate(agent_id: str, reason: str, requested_by: str, score: float | None) -> None:
    """Ask for a suspended agent to return; its owner or a policy approver decides."""
    await _registered(agent_id)  # a workflow for nobody would only fail, and be listed
    proctor = await proctor_client()
    operator = OperatorClient(proctor)
    workflow_id = await operator.request_reinstatement(
        agent_id, requested_by=requested_by, reason=reason, restore_score=score
    )
    progress = await proctor.wait_until(
        workflow_id, lambda p: p.pending is not None or p.stage.value == "closed"
    )
    if progress.pending is None:
        outcome = await operator.reinstatement_outcome(workflow_id)
        fail(f"cannot reinstate {agent_id}: {outcome.reason}")
    click.echo(
        f"reinstatement of {agent_id} waits in {workflow_id} for "
        f"{', '.join(progress.pending.card.approvers)}:\n"
        f"  proctor approve {workflow_id} --as APPROVER"
    )


@agent_group.command("revoke")
@click.argument("agent_id")
@click.option("--reason", default="revoked by an administrator", show_default=True)
@click.option("--as", "actor", default="cli", show_default=True)
@run_async
async def revoke(agent_id: str, reason: str, actor: str) -> None:
    """Refuse every further request from AGENT_ID, for good."""
    await _set_status(agent_id, AgentStatus.REVOKED, reason, actor)


async def _set_status(agent_id: str, status: AgentStatus, reason: str, actor: str) -> None:
    await _registered(agent_id)
    async with database() as pool:
        info = await AgentStore(pool).set_status(agent_id, status)
    await _audit_admin(agent_id, f"agent_{status.value}", {"reason": reason}, actor=actor)
    click.echo(f"agent {info.agent_id} is {info.status.value}")


async def _registered(agent_id: str) -> AgentRecord:
    """AGENT_ID's record, or exit 1 with one line: commands on an unknown id do nothing. An
    id that could never be registered is not looked up (nor echoed raw to the terminal)."""
    record = None
    if AGENT_ID.fullmatch(agent_id):
        async with database() as pool:
            record = await AgentStore(pool).get(agent_id)
    if record is None:
        shown = repr(agent_id[:80]) + ("…" if len(agent_id) > 80 else "")
        fail(f"agent {shown} is not registered", code=1)
    return record


async def _audit_admin(
    agent_id: str, event_type: str, payload: dict[str, object], actor: str = "cli"
) -> None:
    """Administrative changes are audited like workflow steps (each its own key)."""
    async with database() as pool:
        await AuditLog(pool).append(
            AuditEvent(
                idempotency_key=f"admin:{event_type}:{agent_id}:{uuid.uuid4().hex}",
                event_type=event_type,
                agent_id=agent_id,
                actor=actor,
                payload=payload,
            )
        )


def _passphrase(ask: bool) -> bytes | None:
    """From a hidden prompt (never a command-line argument: those show in process lists),
    else PROCTOR_KEY_PASSPHRASE, else none."""
    if ask:
        typed: str = click.prompt(
            "Passphrase for the private key", hide_input=True, confirmation_prompt=True
        )
        return typed.encode()
    from_env = settings().key_passphrase
    return from_env.get_secret_value().encode() if from_env else None


def _fingerprint(pem: str) -> str:
    return sha256_hex(pem.encode())[:16]


def _grace_seconds(text: str) -> float:
    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grace") from exc


def _read_public_key(path: Path) -> str:
    try:
        pem = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read a PEM public key: {exc}")
    load_public_key(pem)  # AgentKeyError (malformed, wrong type or size) → one clear line
    return pem
