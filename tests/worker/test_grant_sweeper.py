"""Grants never outlive the policy version that removed their rule: the set loaded at start and
every set swapped in later revoke, with an audit row each, the live grants whose rule they no
longer enforce as an escalation; a rejected change revokes nothing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from proctor.models import AuditEvent, StandingGrant
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.policy.reload import ReloadingPolicy
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore
from proctor_server.worker.policy_watch import (
    SWEEPER,
    audit_policy_changes,
    audited_policy,
    grant_rules,
    removed_reason,
    sweep_grants,
)
from tests.helpers.grants import grant_draft


def escalation(rule: str, mode: str = "enforce", grants: bool = True) -> str:
    allowed = ", grant: {max: 8h}" if grants else ""
    return f"{{action: {rule}, id: {rule}, approvers: [a@x.io], reason: r, mode: {mode}{allowed}}}"


def policy_text(*rules: str) -> str:
    return f"role: watcher\npermissions: {{escalate: [{', '.join(map(escalation, rules))}]}}\n"


BOTH = policy_text("refunds", "payouts")
REFUNDS_ONLY = policy_text("refunds")
BROKEN = "role: watcher\npermissions: {allow: [{action: 'x', when: 'params.x >'}]}\n"


def write(directory: Path, text: str) -> None:
    target = directory / "watch.yaml"
    target.write_text(text)
    stat = target.stat()  # make the change visible even within one mtime tick
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.fixture
def audit(private_database: tuple[asyncpg.Pool, str]) -> AuditLog:
    return AuditLog(private_database[0])


@pytest.fixture
def grants(audit: AuditLog) -> GrantStore:
    return GrantStore(audit.pool, audit)


async def grant_under(grants: GrantStore, rule_id: str) -> str:
    draft = grant_draft(rule_id=rule_id)
    event = AuditEvent(idempotency_key=f"{draft.grant_id}:made", event_type="grant_made")
    await grants.make(draft, event)
    return draft.grant_id


async def revocations(audit: AuditLog) -> list[dict[str, Any]]:
    return [
        {"actor": row.actor, "agent": row.agent_id, **json.loads(row.payload)}
        async for row in audit.rows()
        if row.event_type == "grant_revoked"
    ]


async def is_revoked(grants: GrantStore, grant_id: str) -> bool:
    grant = await grants.get(grant_id)
    assert grant is not None
    return grant.revoked_at is not None


def test_only_enforced_escalations_allowing_grants_may_hold_them(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "role: watcher\npermissions:\n"
        f"  escalate: [{escalation('refunds')}, {escalation('mirrored', 'shadow')},"
        f" {escalation('no-grants', grants=False)}]\n"
        "  allow: [{action: reads, id: reads}]\n"
        "  deny: [{action: deletes, id: deletes}]\n"
    )

    assert grant_rules(PolicyEngine(load_policy_dir(tmp_path))) == {"refunds"}


async def test_sets_loaded_at_start_and_later_revoke_the_grants_of_removed_rules(
    tmp_path: Path, audit: AuditLog, grants: GrantStore
) -> None:
    refunds = await grant_under(grants, "refunds")
    payouts = await grant_under(grants, "payouts")
    stale = await grant_under(grants, "gone-before-start")
    write(tmp_path, BOTH)

    policy = audited_policy(tmp_path, audit)
    await policy.announce()
    started = policy.current().version

    assert await is_revoked(grants, stale)
    assert not await is_revoked(grants, payouts)

    write(tmp_path, BROKEN)
    assert not await policy.check()
    assert not await is_revoked(grants, payouts)

    write(tmp_path, REFUNDS_ONLY)
    assert await policy.check()
    removed_in = policy.current().version

    assert await is_revoked(grants, payouts)
    assert not await is_revoked(grants, refunds)
    swept = await revocations(audit)
    assert [(r["grant_id"], r["policy_version"]) for r in swept] == [
        (stale, started),
        (payouts, removed_in),
    ]
    assert all(r["actor"] == SWEEPER and r["agent"] == "agent-refunds" for r in swept)
    assert swept[1]["reason"] == removed_reason(removed_in)
    revoked = await grants.get(payouts)
    assert revoked is not None
    assert (revoked.revoked_by, revoked.revoke_reason) == (SWEEPER, removed_reason(removed_in))
    assert (await audit.verify()).intact


async def test_workers_sweeping_together_revoke_each_grant_once(
    tmp_path: Path, audit: AuditLog, grants: GrantStore
) -> None:
    gone = [await grant_under(grants, "payouts") for _ in range(3)]
    kept = await grant_under(grants, "refunds")
    write(tmp_path, REFUNDS_ONLY)
    engine = PolicyEngine(load_policy_dir(tmp_path))

    swept = await asyncio.gather(*(sweep_grants(engine, grants) for _ in range(4)))

    assert sorted(grant_id for ids in swept for grant_id in ids) == sorted(gone)
    assert sorted(r["grant_id"] for r in await revocations(audit)) == sorted(gone)
    assert not await is_revoked(grants, kept)
    assert (await audit.verify()).intact


class FlakyGrants(GrantStore):
    """The real store, whose second sweep (the first after start) fails as a dropped
    connection would."""

    calls = 0

    async def revoke_rules_removed(
        self,
        rules_in_force: Collection[str],
        *,
        by: str,
        reason: str,
        event_for: Callable[[StandingGrant], AuditEvent],
    ) -> list[str]:
        self.calls += 1
        if self.calls == 2:
            raise ConnectionResetError("connection lost")
        return await super().revoke_rules_removed(
            rules_in_force, by=by, reason=reason, event_for=event_for
        )


async def test_a_failed_sweep_is_retried_at_the_next_check(
    tmp_path: Path, audit: AuditLog, grants: GrantStore
) -> None:
    payouts = await grant_under(grants, "payouts")
    write(tmp_path, BOTH)
    policy = audit_policy_changes(
        ReloadingPolicy(tmp_path), audit, grants=FlakyGrants(audit.pool, audit)
    )
    await policy.announce()

    write(tmp_path, REFUNDS_ONLY)
    assert await policy.check()  # swapped; its report (and sweep) failed and is pending
    assert not await is_revoked(grants, payouts)
    assert not await policy.check()  # nothing new on disk: the pending report is retried

    assert await is_revoked(grants, payouts)
    loaded = [row async for row in audit.rows() if row.event_type == "policy_loaded"]
    assert len(loaded) == 2  # the start and the swap, each written once
