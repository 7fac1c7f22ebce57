"""The worker's policy: hot-reloaded, with every swap and every rejected change audited.

An event's idempotency key is its content plus the change it answers (see reload.py): a retried
write of one swap writes nothing twice, every worker announcing the same write of the policy
directory adds no second row, and each new write (A→B→A→B) is a row of its own.

Every set that starts serving also ends the standing grants whose rule it no longer enforces
(`sweep_grants`): a grant never outlives the policy version that removed its rule.
"""

from __future__ import annotations

import logging
from pathlib import Path

from proctor.canonical import digest
from proctor.grants.events import revoked_event
from proctor.models import AuditEvent, Effect
from proctor.policy import PolicyEngine
from proctor.policy.reload import Rejection, ReloadingPolicy, Swap
from proctor.stores.audit_log import AuditLog
from proctor.stores.grants import GrantStore

log = logging.getLogger(__name__)

SWEEPER = "policy"
"""Who the ledger says revoked a grant whose rule a policy version removed."""


def loaded_event(swap: Swap) -> AuditEvent:
    before = swap.previous or "start"
    return AuditEvent(
        idempotency_key=f"policy-loaded:{swap.engine.version}:from:{before}:at:{swap.change}",
        event_type="policy_loaded",
        actor="proctor",
        payload={
            "version": swap.engine.version,
            "previous": before,
            "change": swap.change,
            "files": sorted(f.name for f in swap.engine.files),
        },
    )


def rejected_event(rejection: Rejection) -> AuditEvent:
    lines = [str(p) for p in rejection.problems]
    return AuditEvent(
        idempotency_key=(
            f"policy-rejected:{digest(lines)}:serving:{rejection.serving}:at:{rejection.change}"
        ),
        event_type="policy_rejected",
        actor="proctor",
        payload={"problems": lines, "still_serving": rejection.serving, "change": rejection.change},
    )


def grant_rules(engine: PolicyEngine) -> frozenset[str]:
    """The rules a standing grant may stand under: those the set enforces as escalations that
    allow grants (a grant covers only what its rule escalates; shadow rules are never
    enforced; a rule that dropped its `grant:` ends the grants made under it)."""
    return frozenset(
        rule.rule_id
        for file in engine.files
        for rule in file.rules
        if rule.effect is Effect.ESCALATE
        and not rule.shadow
        and rule.escalation is not None
        and rule.escalation.grant_max_seconds is not None
    )


def removed_reason(version: str) -> str:
    return f"rule removed in policy version {version}"


async def sweep_grants(engine: PolicyEngine, grants: GrantStore) -> list[str]:
    """Revoke the live grants whose rule `engine` no longer enforces; their ids."""
    version = engine.version
    revoked = await grants.revoke_rules_removed(
        grant_rules(engine),
        by=SWEEPER,
        reason=removed_reason(version),
        event_for=lambda grant: revoked_event(
            grant, actor=SWEEPER, reason=removed_reason(version), policy_version=version
        ),
    )
    if revoked:
        log.info("policy %s: revoked grants of removed rules: %s", version, ", ".join(revoked))
    return revoked


def audit_policy_changes(
    policy: ReloadingPolicy, audit: AuditLog, *, grants: GrantStore | None = None
) -> ReloadingPolicy:
    """Record every swap (`policy_loaded`) and every rejected change (`policy_rejected`), and
    after each swap (the start included) sweep the grants of removed rules. A failed sweep
    fails the report, which is retried at the next check (its row is written once)."""
    store = grants if grants is not None else GrantStore(audit.pool, audit)

    async def loaded(swap: Swap) -> None:
        await audit.append(loaded_event(swap))
        await sweep_grants(swap.engine, store)

    async def rejected(rejection: Rejection) -> None:
        await audit.append(rejected_event(rejection))

    policy.report_to(loaded, rejected)
    return policy


def audited_policy(directory: Path, audit: AuditLog) -> ReloadingPolicy:
    return audit_policy_changes(ReloadingPolicy(directory), audit)
