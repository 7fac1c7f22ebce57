"""`proctor approve`, `proctor deny` and `proctor approver key …`: signed votes from the shell.

A vote counts only if signed by the approver's own key (registered in the trusted approval key
directory), so `--as` is not a claim anyone can make: the key proves it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import click
from temporalio.service import RPCError

from proctor.approvals.keys import (
    VoteKeyDirectory,
    VoteKeyError,
    VoteSigner,
    provisioned_key_path,
)
from proctor.approvals.operator_client import OperatorClient
from proctor.attestation import UnusableKey, fingerprint
from proctor.cli.common import fail, proctor_client, run_async, settings
from proctor.errors import InputError
from proctor.models import ApprovalCard, GrantScope, RecordedVote
from proctor.policy.conditions import compile_condition
from proctor.policy.schema import format_duration, parse_duration
from proctor.settings import approval_key_dir

LONGEST_GRANT_SECONDS = 30 * 86400.0
"""A vote never asks for more (GrantScope's own bound), whatever a rule allows."""


def _directory() -> VoteKeyDirectory:
    return VoteKeyDirectory(approval_key_dir(settings()))


def _signer(approver: str | None, key: Path | None) -> VoteSigner:
    """The approver's key: `--key`, else the one `proctor up` provisioned in the state dir."""
    if key is None:
        if approver is None:
            fail("give --as YOU (and --key PEM unless `proctor up` provisioned your key)")
        key = provisioned_key_path(settings().state_dir, approver)
        if not key.exists():
            fail(
                f"no vote key for {approver}: give --key PEM (create one with `proctor "
                f"approver key create {approver} --key-out PEM`)"
            )
    try:
        signer = VoteSigner.load(key)
    except VoteKeyError as exc:
        fail(str(exc))
    if signer.approver is None:
        fail(f"{key}: a key of the {signer.channel!r} approval service, not an approver's")
    if approver is not None and approver.strip().casefold() != signer.approver.casefold():
        fail(f"{key} is the key of {signer.approver}, not of {approver}")
    return signer


@dataclass(frozen=True)
class GrantAsk:
    """`--grant 1h [--grant-when CEL] [--grant-uses N]`, checked before anything is signed."""

    seconds: float
    when: str | None = None
    max_uses: int | None = None

    def scope(self, card: ApprovalCard) -> GrantScope:
        """The scope to sign under the card's rule, capped to what the rule allows (said)."""
        allowed = card.grant_max_seconds
        if allowed is None:
            fail(f"rule {card.rule_id} allows no standing grants: approve without --grant", code=1)
        seconds = min(self.seconds, allowed, LONGEST_GRANT_SECONDS)
        if seconds < self.seconds:
            click.echo(
                f"--grant capped to {format_duration(seconds)}: the most rule {card.rule_id} allows"
            )
        return GrantScope(
            rule_id=card.rule_id, duration_seconds=seconds, when=self.when, max_uses=self.max_uses
        )


def grant_ask(duration: str | None, when: str | None, uses: int | None) -> GrantAsk | None:
    """The grant the options ask for, or None; a one-line error for a bad one."""
    if duration is None:
        if when is not None or uses is not None:
            fail("--grant-when and --grant-uses narrow a grant: give --grant DURATION too")
        return None
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        fail(f"--grant: {exc}")
    if when is not None:
        try:
            compile_condition("when", when)
        except InputError as exc:
            fail(f"--grant-when: {exc}")
    return GrantAsk(seconds, when, uses)


def _granted_text(scope: GrantScope) -> str:
    bounds = [f"while {scope.when}"] if scope.when else []
    if scope.max_uses is not None:
        bounds.append(f"at most {scope.max_uses} use(s)")
    return (
        f"; asked for a standing grant: {scope.rule_id} for "
        + format_duration(scope.duration_seconds)
        + (f" ({', '.join(bounds)})" if bounds else "")
        + ", made if the round approves with it"
    )


async def cast(
    workflow_id: str,
    signer: VoteSigner,
    approve: bool,
    note: str | None,
    grant: GrantAsk | None = None,
) -> None:
    operator = OperatorClient(await proctor_client())
    try:
        before = await operator.progress(workflow_id)
    except RPCError as exc:
        fail(f"{workflow_id}: no such governed action ({exc.message})")
    if before.pending is None:
        fail(f"{workflow_id} is not waiting for approval (stage {before.stage.value})", code=1)
    scope = grant.scope(before.pending.card) if grant is not None else None
    approver = signer.approver
    assert approver is not None
    await operator.decide(
        workflow_id,
        signer,
        approve=approve,
        note=note,
        request_digest=before.pending.card.request_digest,
        grant=scope,
    )
    recorded = await _judged(operator, workflow_id, len(before.votes), approver)
    if recorded is None:
        click.echo(f"vote sent to {workflow_id}; the workflow has not judged it yet")
    elif recorded.accepted:
        asked = _granted_text(scope) if scope is not None else ""
        click.echo(f"{'approved' if approve else 'denied'} {workflow_id} as {approver}{asked}")
    else:
        fail(f"the workflow refused the vote of {approver}: {recorded.reason}", code=1)


async def _judged(
    operator: OperatorClient, workflow_id: str, seen: int, approver: str
) -> RecordedVote | None:
    """The workflow's verdict on our vote (it checks the signature and authorisation)."""
    for _ in range(100):
        state = await operator.progress(workflow_id)
        ours = [v for v in state.votes[seen:] if v.vote.approver == approver]
        if ours:
            return ours[0]
        await asyncio.sleep(0.1)
    return None


_KEY = click.option(
    "--key",
    "key",
    type=click.Path(path_type=Path),
    help="Your private vote key (default: the one `proctor up` provisioned).",
)
_AS = click.option("--as", "approver", help="Your approver identity (email).")


@click.command("approve")
@click.argument("workflow_id")
@_AS
@_KEY
@click.option("--note", help="Optional note, kept in the audit log.")
@click.option(
    "--grant",
    "grant_for",
    metavar="DURATION",
    help="Also approve this agent's similar requests under the same rule for this long "
    "(e.g. 1h; capped to the rule's `grant: {max: ...}`).",
)
@click.option(
    "--grant-when",
    metavar="CEL",
    help="Only while this condition holds (e.g. 'params.amount <= 600').",
)
@click.option(
    "--grant-uses",
    type=click.IntRange(1, 1_000_000),
    help="At most this many requests covered by the grant.",
)
@run_async
async def approve(
    workflow_id: str,
    approver: str | None,
    key: Path | None,
    note: str | None,
    grant_for: str | None,
    grant_when: str | None,
    grant_uses: int | None,
) -> None:
    """Approve a waiting action with your signed vote (and, with --grant, similar ones for a
    while)."""
    grant = grant_ask(grant_for, grant_when, grant_uses)
    await cast(workflow_id, _signer(approver, key), True, note, grant)


@click.command("deny")
@click.argument("workflow_id")
@_AS
@_KEY
@click.option("--note", required=True, help="Why: shown to the agent and kept in the audit.")
@run_async
async def deny(workflow_id: str, approver: str | None, key: Path | None, note: str) -> None:
    """Deny a waiting action with your signed vote."""
    await cast(workflow_id, _signer(approver, key), False, note)


@click.group("approver")
def approver_group() -> None:
    """Approvers' vote keys."""


@approver_group.group("key")
def key_group() -> None:
    """Register, create and list the keys that may sign an approver's votes."""


@key_group.command("create")
@click.argument("approver")
@click.option(
    "--key-out",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the private key (mode 0600; never overwritten).",
)
def create(approver: str, key_out: Path) -> None:
    """A new Ed25519 vote key: private half to --key-out, public half registered."""
    signer = VoteSigner.generate(approver=approver.strip())
    try:
        target = _directory()
        signer.save(key_out)
        where = target.register_approver(approver, signer.public_key_pem)
    except (VoteKeyError, OSError) as exc:
        fail(f"{exc}")
    click.echo(
        f"vote key {signer.key_id[:16]} of {approver}: private key in {key_out}, "
        f"public key registered at {where}"
    )


@key_group.command("register")
@click.argument("approver")
@click.option("--public-key", required=True, type=click.Path(exists=True, path_type=Path))
def register(approver: str, public_key: Path) -> None:
    """Register an approver's existing public key (PEM)."""
    try:
        pem = public_key.read_text(encoding="ascii")
        where = _directory().register_approver(approver, pem)
    except (VoteKeyError, UnusableKey, OSError, UnicodeDecodeError) as exc:
        fail(f"{public_key}: {exc}")
    click.echo(f"vote key {fingerprint(pem)[:16]} of {approver} registered at {where}")


@key_group.command("list")
def list_keys() -> None:
    """Every approver with a registered vote key, and the keys' fingerprints."""
    directory = _directory()
    approvers = directory.approvers()
    if not approvers:
        click.echo(f"no approver keys in {directory.root}")
    for approver in approvers:
        prints = ", ".join(fingerprint(pem)[:16] for pem in directory.approver_keys(approver))
        click.echo(f"{approver}: {prints}")
