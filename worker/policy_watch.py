"""The worker's policy: hot-reloaded, with every swap and every rejected change audited.

An event's idempotency key is its content plus the change it answers (see reload.py): a retried
write of one swap writes nothing twice, every worker announcing the same write of the policy
directory adds no second row, and each new write (A→B→A→B) is a row of its own.
"""

from __future__ import annotations

from pathlib import Path

from proctor.canonical import digest
from proctor.models import AuditEvent
from proctor.policy.reload import Rejection, ReloadingPolicy, Swap
from proctor.stores.audit_log import AuditLog


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


def audit_policy_changes(policy: ReloadingPolicy, audit: AuditLog) -> ReloadingPolicy:
    """Record every swap (`policy_loaded`) and every rejected change (`policy_rejected`)."""

    async def loaded(swap: Swap) -> None:
        await audit.append(loaded_event(swap))

    async def rejected(rejection: Rejection) -> None:
        await audit.append(rejected_event(rejection))

    policy.report_to(loaded, rejected)
    return policy


def audited_policy(directory: Path, audit: AuditLog) -> ReloadingPolicy:
    return audit_policy_changes(ReloadingPolicy(directory), audit)
