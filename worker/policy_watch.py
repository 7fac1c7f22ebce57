"""The worker's policy: hot-reloaded, with every swap and every rejected change audited."""

from __future__ import annotations

from pathlib import Path

from proctor.audit.store import AuditLog
from proctor.canonical import digest
from proctor.models import AuditEvent
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicyProblem
from proctor.policy.reload import ReloadingPolicy


def audit_policy_changes(policy: ReloadingPolicy, audit: AuditLog) -> ReloadingPolicy:
    """Record every swap (`policy_loaded`) and every rejected change (`policy_rejected`)."""
    previous: dict[str, str] = {}

    async def loaded(engine: PolicyEngine) -> None:
        before = previous.get("version", "start")
        await audit.append(AuditEvent(
            idempotency_key=f"policy-loaded:{engine.version}:from:{before}",
            event_type="policy_loaded", actor="proctor",
            payload={"version": engine.version, "previous": before,
                     "files": sorted(f.name for f in engine.files)},
        ))
        previous["version"] = engine.version

    async def rejected(problems: list[PolicyProblem]) -> None:
        lines = [str(p) for p in problems]
        serving = previous.get("version", "start")
        await audit.append(AuditEvent(
            idempotency_key=f"policy-rejected:{digest(lines)}:serving:{serving}",
            event_type="policy_rejected", actor="proctor",
            payload={"problems": lines, "still_serving": serving},
        ))

    policy.report_to(loaded, rejected)
    return policy


def audited_policy(directory: Path, audit: AuditLog) -> ReloadingPolicy:
    return audit_policy_changes(ReloadingPolicy(directory), audit)
