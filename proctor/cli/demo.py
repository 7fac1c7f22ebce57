"""`proctor demo`: the four paths of a governed action against the running stack."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from proctor.approvals.keys import (
    VoteKeyDirectory,
    VoteSigner,
    provision_approver_keys,
    provisioned_key_path,
)
from proctor.approvals.operator_client import OperatorClient
from proctor.cli.audit import render
from proctor.cli.common import database, fail, proctor_client, run_async, settings
from proctor.models import Outcome
from proctor.settings import approval_key_dir
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog

DEMO_AGENT = "customer-service-agent"
DEMO_OWNER = "support-lead@example.com"
DEMO_APPROVER = "alice@example.com"


def demo_approver() -> VoteSigner:
    """The demo approver's vote key, provisioned by `proctor up` (or made now)."""
    state = settings().state_dir
    path = provisioned_key_path(state, DEMO_APPROVER)
    if path.exists():
        return VoteSigner.load(path)
    provision_approver_keys([DEMO_APPROVER], state, VoteKeyDirectory(approval_key_dir(settings())))
    return VoteSigner.load(path)


async def demo_key() -> AgentKey:
    """The demo agent's key, kept in the state dir; registered on first run."""
    path = settings().state_dir / "keys" / f"{DEMO_AGENT}.pem"
    async with database() as pool:
        store = AgentStore(pool)
        registered = await store.get(DEMO_AGENT)
        if registered is None:
            key = AgentKey.generate(DEMO_AGENT, "rsa-2048")
            await store.register(
                DEMO_AGENT,
                role="support",
                owner=DEMO_OWNER,
                public_key_pem=key.public_key_pem,
                display_name="Customer service agent (demo)",
            )
            key.save(path)
            click.echo(f"registered {DEMO_AGENT} (RSA-2048); private key in {path}")
            return key
    if not path.exists():
        fail(f"agent {DEMO_AGENT} exists but its key is not at {path}: the demo can't sign")
    key = AgentKey.load(path)
    if key.public_key_pem != registered.public_key_pem:
        fail(f"{path} does not hold the registered key of {DEMO_AGENT}")
    return key


def show(title: str, outcome: Outcome) -> None:
    detail = outcome.result if outcome.ok else outcome.error or outcome.decision.reason
    click.echo(
        f"  → {outcome.status.value.upper()} by rule {outcome.decision.rule_id} "
        f"(policy {outcome.decision.policy_version}): {detail}"
    )


@click.command("demo")
@run_async
async def demo() -> None:
    """Allowed, denied, escalated-and-approved: then the verified audit trail."""
    key = await demo_key()
    proctor = await proctor_client()

    async def lookup_orders(params: dict[str, Any]) -> dict[str, Any]:
        return {"customer": params["customer"], "orders": [1001, 1002]}

    async def process_refund(params: dict[str, Any]) -> dict[str, Any]:
        return {"refunded": params["amount"], "order": params["orderId"]}

    async def delete_customer(params: dict[str, Any]) -> None:
        raise AssertionError("a denied action must never run")

    click.echo("1. read:orders (allowed by policy)")
    allowed = await proctor.execute(key, "read:orders", {"customer": 42}, handler=lookup_orders)
    show("allowed", allowed)

    click.echo("2. delete:customer (denied by policy)")
    denied = await proctor.execute(
        key, "delete:customer", {"customer": 42}, handler=delete_customer
    )
    show("denied", denied)

    click.echo("3. refund_requests 599.99 (escalated to a human)")
    refund = asyncio.create_task(
        proctor.execute(
            key, "refund_requests", {"orderId": 12345, "amount": 599.99}, handler=process_refund
        )
    )
    waiting = None
    while waiting is None:
        pending = [
            p
            for p in [w.card for w in await OperatorClient(proctor).pending_approvals()]
            if p.agent_id == DEMO_AGENT
            and p.action == "refund_requests"
            and p.params.get("orderId") == 12345
        ]
        waiting = pending[0] if pending else None
        if waiting is None:
            await asyncio.sleep(0.2)
    click.echo(f"  waiting in {waiting.workflow_id} for {', '.join(waiting.approvers)}")
    click.echo(f"  $ proctor approve {waiting.workflow_id} --as {DEMO_APPROVER}")
    await OperatorClient(proctor).decide(
        waiting.workflow_id,
        demo_approver(),
        approve=True,
        note="demo",
        request_digest=waiting.request_digest,
    )
    approved = await refund
    show("approved", approved)

    click.echo("\nAudit trail of these three actions:")
    async with database() as pool:
        log = AuditLog(pool)
        for outcome in (allowed, denied, approved):
            for row in await log.for_workflow(outcome.workflow_id):
                click.echo("  " + render(row))
        report = await log.verify()
    if not report.intact:
        fail(f"audit chain BROKEN at {report.first_break}", code=1)
    click.echo(
        f"\naudit chain intact: {report.rows_checked} rows verified, head seq {report.last_seq}"
    )
