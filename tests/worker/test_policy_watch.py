"""Hot reload on the real worker path: decisions change without a restart; a broken change is
rejected whole, audited, and the previous set keeps serving."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from proctor.audit.keys import LedgerKeys
from proctor.audit.store import AuditLog
from tests.e2e.harness import Harness
from worker.main import build_worker
from worker.policy_watch import audited_policy

ALLOW = "role: watcher\npermissions: {allow: ['report:*']}\n"
DENY = "role: watcher\npermissions: {deny: ['report:*'], allow: ['read:*']}\n"
BROKEN = "role: watcher\npermissions: {allow: [{action: 'report:*', when: 'params.x >'}]}\n"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "watch.yaml").write_text(ALLOW)
    yield tmp_path


def rewrite(directory: Path, text: str) -> None:
    target = directory / "watch.yaml"
    target.write_text(text)
    stat = target.stat()  # make the change visible even within one mtime tick
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


async def test_policy_changes_apply_without_restart_and_bad_ones_are_rejected(
    dev_server: WorkflowEnvironment, pool: asyncpg.Pool, policy_dir: Path,
) -> None:
    audit = AuditLog(pool)
    policy = audited_policy(policy_dir, audit)
    await policy.announce()
    first = policy.current().version
    queue = f"proctor-watch-{uuid.uuid4().hex[:8]}"
    gov = Harness(Client(dev_server.client, task_queue=queue), pool, queue)
    key = await gov.new_agent(role="watcher")

    async with build_worker(dev_server.client, pool, policy.current, task_queue=queue,
                            keys=LedgerKeys.generate()):
        assert (await gov.proctor.execute(key, "report:daily", {}, handler=lambda p: 1)).ok

        rewrite(policy_dir, DENY)
        assert await policy.check()
        denied = await gov.proctor.execute(key, "report:daily", {}, handler=lambda p: 1)
        assert denied.status is ActionStatus.DENIED
        second = policy.current().version
        assert denied.decision.policy_version == second != first

        rewrite(policy_dir, BROKEN)
        assert not await policy.check()
        assert policy.current().version == second
        still = await gov.proctor.execute(key, "report:daily", {}, handler=lambda p: 1)
        assert still.status is ActionStatus.DENIED

    rows = [r async for r in audit.rows()]
    loaded = [r for r in rows if r.event_type == "policy_loaded"]
    assert f'"version":"{second}"' in loaded[-1].payload
    assert f'"previous":"{first}"' in loaded[-1].payload
    rejected = [r for r in rows if r.event_type == "policy_rejected"][-1]
    assert "watch.yaml:2: permissions.allow.0.when" in rejected.payload
    assert f'"still_serving":"{second}"' in rejected.payload
