"""`proctor grants list|revoke`: the standing grants approvals made, and ending one early.

Reads and revokes in Postgres only (no Temporal needed); a revocation is audited like every
other change of a grant, with the operator named by --by as its actor."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from proctor.cli.common import database, fail, run_async
from proctor.grants.events import revoked_event
from proctor.models import StandingGrant
from proctor.stores.audit_log import AuditLog
from proctor.stores.connection import database_now
from proctor.stores.grants import GrantStore

GRANT_ID = re.compile(r"^g-[A-Za-z0-9-]{1,64}$")
HEADERS = ("ID", "AGENT", "ACTION", "RULE", "MADE BY", "EXPIRES (UTC)", "USES", "WHEN", "STATUS")
_LISTED = ("request", "votes")
"""Left out of --json: the signed request carries raw parameters (see `proctor history`)."""


@click.group("grants")
def grants_group() -> None:
    """Standing grants: approvals that also cover similar requests for a while."""


@grants_group.command("list")
@click.option("--agent", "agent_id", help="Only this agent's grants.")
@click.option("--all", "include_ended", is_flag=True, help="Also expired, used up and revoked.")
@click.option("--json", "as_json", is_flag=True, help="Print the grants as JSON.")
@run_async
async def list_grants(agent_id: str | None, include_ended: bool, as_json: bool) -> None:
    """Live grants (all with --all), soonest to expire first."""
    async with database() as pool:
        now = await database_now(pool)
        grants = await GrantStore(pool, AuditLog(pool)).list(
            agent_id=agent_id, include_ended=include_ended, at=now
        )
    if as_json:
        click.echo(json.dumps([grant_document(grant, now) for grant in grants], indent=2))
    elif not grants:
        click.echo("no grants" if include_ended else "no live grants (--all shows ended ones)")
    else:
        click.echo("\n".join(table(grants, now)))


@grants_group.command("revoke")
@click.argument("grant_id")
@click.option("--by", "actor", required=True, help="Who revokes (recorded in the audit log).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@run_async
async def revoke(grant_id: str, actor: str, reason: str) -> None:
    """End GRANT_ID now: no request is allowed by it from then on."""
    async with database() as pool:
        store = GrantStore(pool, AuditLog(pool))
        found = await store.get(grant_id) if GRANT_ID.fullmatch(grant_id) else None
        if found is None:
            fail(f"no grant {_shown(grant_id)} (proctor grants list --all)", code=1)
        if found.revoked_at is not None:
            click.echo(f"already revoked: {grant_id} {_revocation(found)}")
            return
        grant = await store.revoke(
            grant_id,
            by=actor,
            reason=reason,
            event=revoked_event(found, actor=actor, reason=reason),
        )
    assert grant is not None
    click.echo(f"revoked {grant_id}: {_revocation(grant)}")


def status(grant: StandingGrant, now: datetime) -> str:
    """What ended the grant first in importance (a revocation says most), or live."""
    if grant.revoked_at is not None:
        return "revoked"
    if grant.max_uses is not None and grant.uses >= grant.max_uses:
        return "used up"
    if grant.expires_at <= now:
        return "expired"
    return "live"


def uses_text(grant: StandingGrant) -> str:
    return f"{grant.uses}" if grant.max_uses is None else f"{grant.uses}/{grant.max_uses}"


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def row(grant: StandingGrant, now: datetime) -> tuple[str, ...]:
    return (
        grant.grant_id,
        grant.agent_id,
        grant.action,
        grant.rule_id,
        ",".join(grant.made_by),
        utc_text(grant.expires_at),
        uses_text(grant),
        grant.when or "-",
        status(grant, now),
    )


def table(grants: Sequence[StandingGrant], now: datetime) -> list[str]:
    """Aligned columns under a header line."""
    rows = [HEADERS, *(row(grant, now) for grant in grants)]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(HEADERS))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() for cells in rows
    ]


def grant_document(grant: StandingGrant, now: datetime) -> dict[str, object]:
    return {**grant.model_dump(mode="json", exclude=set(_LISTED)), "status": status(grant, now)}


def _revocation(grant: StandingGrant) -> str:
    when = "" if grant.revoked_at is None else f" at {utc_text(grant.revoked_at)} UTC"
    return f"by {grant.revoked_by}{when} ({grant.revoke_reason}); used {uses_text(grant)}"


def _shown(text: str) -> str:
    return repr(text[:80]) + ("…" if len(text) > 80 else "")
