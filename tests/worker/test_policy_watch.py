"""Hot reload on the real worker path: decisions change without a restart; a broken change is
rejected whole, audited, and the previous set keeps serving."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus, Client
from proctor.audit.keys import LedgerKeys
from proctor.policy.reload import Rejection, Swap
from proctor.stores.audit_log import AuditLog
from proctor_server.worker.main import build_worker
from proctor_server.worker.policy_watch import (
    audit_policy_changes,
    audited_policy,
    loaded_event,
    rejected_event,
)
from tests.helpers.harness import Harness

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
    dev_server: WorkflowEnvironment,
    pool: asyncpg.Pool,
    policy_dir: Path,
) -> None:
    audit = AuditLog(pool)
    policy = audited_policy(policy_dir, audit)
    await policy.announce()
    first = policy.current().version
    queue = f"proctor-watch-{uuid.uuid4().hex[:8]}"
    gov = Harness(Client(dev_server.client, task_queue=queue), pool, queue)
    key = await gov.new_agent(role="watcher")

    async with build_worker(
        dev_server.client,
        pool,
        policy.current,
        task_queue=queue,
        keys=LedgerKeys.generate(),
        vote_keys=gov.vote_keys,
    ):
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


# --- every swap audited, once -----------------------------------------------------------------

OTHER = "role: watcher\npermissions: {allow: ['read:*']}\n"
DEEP = "role: watcher\npermissions: {allow: " + "[" * 10_000 + "]" * 10_000 + "}\n"
MERGE = "role: watcher\nbase: &b {allow: ['read:*']}\npermissions:\n  <<: *b\n"


def write(directory: Path, text: str) -> None:
    """A new write, as a person or a deploy makes one: at a later moment than the last."""
    time.sleep(0.02)  # a later ctime than any write before, even on a coarse clock
    (directory / "watch.yaml").write_text(text)


async def swaps_since(audit: AuditLog, seq: int) -> list[tuple[str, str]]:
    """(previous, version) of every policy_loaded row after `seq`."""
    payloads = [
        json.loads(r.payload) async for r in audit.rows(seq + 1) if r.event_type == "policy_loaded"
    ]
    return [(p["previous"], p["version"]) for p in payloads]


async def test_every_swap_is_audited_even_back_to_an_earlier_set(
    pool: asyncpg.Pool, policy_dir: Path
) -> None:
    audit = AuditLog(pool)
    policy = audited_policy(policy_dir, audit)
    await policy.announce()
    a = policy.current().version
    seq, _ = await audit.head()
    versions = [a]
    for text in (OTHER, ALLOW, OTHER):  # A→B→A→B
        write(policy_dir, text)
        assert await policy.check()
        versions.append(policy.current().version)
    b = versions[1]
    assert versions == [a, b, a, b] and a != b
    assert await swaps_since(audit, seq) == [(a, b), (b, a), (a, b)]


async def test_two_workers_announcing_the_same_write_make_one_row_per_swap(
    pool: asyncpg.Pool, policy_dir: Path
) -> None:
    """Two processes reading one policy directory (each its own AuditLog on the same
    database) report each write of it once between them; nothing is lost either."""
    first = audited_policy(policy_dir, AuditLog(pool))
    second = audited_policy(policy_dir, AuditLog(pool))
    await first.announce()
    await second.announce()
    audit = AuditLog(pool)
    seq, _ = await audit.head()
    a = first.current().version
    for text in (OTHER, ALLOW, OTHER):
        write(policy_dir, text)
        assert await first.check()
        assert await second.check()
    b = first.current().version
    assert second.current().version == b
    assert await swaps_since(audit, seq) == [(a, b), (b, a), (a, b)]


async def test_a_swap_whose_report_failed_is_retried_and_written_once(
    pool: asyncpg.Pool, policy_dir: Path
) -> None:
    """The row was committed but the connection dropped before the answer: the retry on the
    next check writes nothing twice."""
    audit = AuditLog(pool)
    policy = audited_policy(policy_dir, audit)
    await policy.announce()
    a = policy.current().version
    seq, _ = await audit.head()

    async def dropped_after_commit(swap: Swap) -> None:
        await audit.append(loaded_event(swap))
        raise ConnectionResetError("connection lost after the commit")

    async def rejected(rejection: Rejection) -> None:
        await audit.append(rejected_event(rejection))

    policy.report_to(dropped_after_commit, rejected)
    write(policy_dir, OTHER)
    assert await policy.check()  # swapped; the report is pending
    b = policy.current().version
    audit_policy_changes(policy, audit)
    assert not await policy.check()  # nothing new on disk: the pending report is retried
    assert not await policy.check()
    assert await swaps_since(audit, seq) == [(a, b)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (DEEP, "watch.yaml:2: yaml: nested deeper than 64 levels: refused"),
        (MERGE, "watch.yaml:4: permissions.<<: merge keys (<<) are not supported"),
    ],
)
async def test_hostile_yaml_on_reload_is_rejected_audited_and_the_old_set_serves(
    pool: asyncpg.Pool, policy_dir: Path, text: str, problem: str
) -> None:
    audit = AuditLog(pool)
    policy = audited_policy(policy_dir, audit)
    await policy.announce()
    serving = policy.current().version
    seq, _ = await audit.head()
    for _ in range(2):  # each write of it is a rejection of its own
        write(policy_dir, text)
        assert not await policy.check()
        assert policy.current().version == serving
    rejected = [
        json.loads(r.payload)
        async for r in audit.rows(seq + 1)
        if r.event_type == "policy_rejected"
    ]
    assert len(rejected) == 2
    for payload in rejected:
        assert payload["still_serving"] == serving
        [line] = payload["problems"]
        assert line.startswith(problem), line
