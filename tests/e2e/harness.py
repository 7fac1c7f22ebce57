"""A running Proctor (real worker, real activities, real Postgres) on one Temporal server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client as TemporalClient

from proctor import AgentKey, Client
from proctor.approvals.directory import ApproverDirectory
from proctor.approvals.slack import SlackNotifier
from proctor.audit.keys import LedgerKeys
from proctor.audit.store import AuditLog
from proctor.models import PendingApproval, Progress
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.signing import KeyAlgorithm
from proctor.stores.agents import AgentStore
from worker.main import build_worker

POLICY_DIR = Path(__file__).parent / "policies"
OWNER = "owner@example.com"


@dataclass
class Harness:
    proctor: Client
    pool: asyncpg.Pool
    task_queue: str

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.pool)

    async def new_agent(self, algorithm: KeyAlgorithm = "ed25519",
                        role: str = "tester") -> AgentKey:
        key = AgentKey.generate(f"agent-{uuid.uuid4().hex[:10]}", algorithm)
        await AgentStore(self.pool).register(key.agent_id, role=role, owner=OWNER,
                                             public_key_pem=key.public_key_pem)
        return key

    async def wait_for_stage(self, workflow_id: str, stage: str, seconds: float = 20) -> None:
        await self.wait_until(workflow_id, lambda p: p.stage.value == stage, seconds)

    async def wait_until_listed(self, workflow_id: str, seconds: float = 30) -> PendingApproval:
        """Visibility is eventually consistent: poll the pending list until the workflow shows."""
        async with asyncio.timeout(seconds):
            while True:
                for pending in await self.proctor.pending_approvals():
                    if pending.workflow_id == workflow_id:
                        return pending
                await asyncio.sleep(0.1)

    async def wait_until(self, workflow_id: str, condition: Callable[[Progress], bool],
                         seconds: float = 20) -> Progress:
        return await self.proctor.wait_until(workflow_id, condition,
                                             within=timedelta(seconds=seconds))


def policy_engine() -> PolicyEngine:
    return PolicyEngine(load_policy_dir(POLICY_DIR))


@asynccontextmanager
async def running_worker(temporal: TemporalClient, pool: asyncpg.Pool, task_queue: str, *,
                         notifier: SlackNotifier | None = None,
                         directory: ApproverDirectory | None = None,
                         sticky: bool = True, sandboxed: bool = False,
                         signature_window_seconds: float = 300.0) -> AsyncIterator[None]:
    """`sticky=False` for a worker that will die mid-wait on the time-skipping server, which
    never hands a dead worker's sticky tasks back to the shared queue; `sandboxed` runs the
    workflows in Temporal's sandbox (PROCTOR_WORKFLOW_SANDBOX)."""
    engine = policy_engine()
    async with build_worker(temporal, pool, lambda: engine, task_queue=task_queue,
                            keys=LedgerKeys.generate(), notifier=notifier,
                            directory=lambda: directory or ApproverDirectory(),
                            max_cached_workflows=1000 if sticky else 0,
                            sandboxed=sandboxed,
                            signature_window_seconds=signature_window_seconds):
        yield


@asynccontextmanager
async def harness(temporal: TemporalClient, pool: asyncpg.Pool, *,
                  notifier: SlackNotifier | None = None,
                  directory: ApproverDirectory | None = None,
                  sandboxed: bool = False) -> AsyncIterator[Harness]:
    task_queue = f"proctor-test-{uuid.uuid4().hex[:8]}"
    async with running_worker(temporal, pool, task_queue, notifier=notifier,
                              directory=directory, sandboxed=sandboxed):
        yield Harness(Client(temporal, task_queue=task_queue), pool, task_queue)
