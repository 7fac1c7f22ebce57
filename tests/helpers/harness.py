"""A running Proctor (real worker, real activities, real Postgres) on one Temporal server."""

from __future__ import annotations

import asyncio
import inspect
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client as TemporalClient

from proctor import AgentKey, Client
from proctor.approvals.directory import ApproverDirectory
from proctor.approvals.keys import VoteKeyDirectory, VoteSigner
from proctor.approvals.operator_client import OperatorClient
from proctor.approvals.slack import SlackNotifier
from proctor.audit.keys import LedgerKeys
from proctor.models import PendingApproval, Progress, Vote
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.signing import KeyAlgorithm
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor_server.worker.main import build_worker

POLICY_DIR = Path(__file__).parents[1] / "e2e" / "policies"
"""The end-to-end policy set every harness worker loads."""
OWNER = "owner@example.com"


@dataclass
class Harness:
    proctor: Client
    pool: asyncpg.Pool
    task_queue: str
    vote_keys: VoteKeyDirectory = field(
        default_factory=lambda: VoteKeyDirectory(Path(tempfile.mkdtemp(prefix="proctor-votekeys-")))
    )
    """The trusted vote-key directory of this harness's worker (pass it to running_worker)."""
    signers: dict[str, VoteSigner] = field(default_factory=dict)

    def approver(self, name: str) -> VoteSigner:
        """`name`'s own vote key, registered in the worker's trusted directory on first use."""
        if name not in self.signers:
            signer = VoteSigner.generate(approver=name)
            self.vote_keys.register_approver(name, signer.public_key_pem)
            self.signers[name] = signer
        return self.signers[name]

    def channel(self, name: str) -> VoteSigner:
        """An approval service's key (e.g. the Slack app's), trusted by the worker."""
        key = f"channel:{name}"
        if key not in self.signers:
            signer = VoteSigner.generate(channel=name)
            self.vote_keys.register_channel(name, signer.public_key_pem)
            self.signers[key] = signer
        return self.signers[key]

    async def vote(
        self,
        workflow_id: str,
        approver: str,
        *,
        approve: bool,
        note: str | None = None,
        request_digest: str | None = None,
    ) -> Vote:
        """`approver` votes with their own registered key."""
        return await self.operator.decide(
            workflow_id,
            self.approver(approver.strip()),
            approve=approve,
            note=note,
            approver=approver,
            request_digest=request_digest,
        )

    @property
    def operator(self) -> OperatorClient:
        """The approvers' and operators' side of the same Temporal connection."""
        return OperatorClient(self.proctor)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.pool)

    async def new_agent(
        self, algorithm: KeyAlgorithm = "ed25519", role: str = "tester"
    ) -> AgentKey:
        key = AgentKey.generate(f"agent-{uuid.uuid4().hex[:10]}", algorithm)
        await AgentStore(self.pool).register(
            key.agent_id, role=role, owner=OWNER, public_key_pem=key.public_key_pem
        )
        return key

    async def wait_for_stage(self, workflow_id: str, stage: str, seconds: float = 20) -> None:
        await self.wait_until(workflow_id, lambda p: p.stage.value == stage, seconds)

    async def wait_until_listed(self, workflow_id: str, seconds: float = 30) -> PendingApproval:
        """Visibility is eventually consistent: poll the pending list until the workflow shows.
        Workflows other tests left waiting, their workers gone, are skipped after a second
        (as `approvals list` skips a silent task queue)."""
        async with asyncio.timeout(seconds):
            while True:
                listed, _silent = await self.operator.pending_approvals_report(
                    answer_within=timedelta(seconds=1)
                )
                for pending in listed:
                    if pending.card.workflow_id == workflow_id:
                        return pending
                await asyncio.sleep(0.1)

    async def wait_until(
        self, workflow_id: str, condition: Callable[[Progress], bool], seconds: float = 20
    ) -> Progress:
        return await self.proctor.wait_until(
            workflow_id, condition, within=timedelta(seconds=seconds)
        )


def policy_engine() -> PolicyEngine:
    return PolicyEngine(load_policy_dir(POLICY_DIR))


@asynccontextmanager
async def running_worker(
    temporal: TemporalClient,
    pool: asyncpg.Pool,
    task_queue: str,
    *,
    notifier: SlackNotifier | None = None,
    directory: ApproverDirectory | None = None,
    sticky: bool = True,
    sandboxed: bool = False,
    signature_window_seconds: float = 300.0,
    vote_keys: VoteKeyDirectory | None = None,
) -> AsyncIterator[None]:
    """`sticky=False` for a worker that will die mid-wait on the time-skipping server, which
    never hands a dead worker's sticky tasks back to the shared queue; `sandboxed` runs the
    workflows in Temporal's sandbox (PROCTOR_WORKFLOW_SANDBOX)."""
    engine = policy_engine()
    async with build_worker(
        temporal,
        pool,
        lambda: engine,
        task_queue=task_queue,
        keys=LedgerKeys.generate(),
        notifier=notifier,
        vote_keys=vote_keys or VoteKeyDirectory(Path(tempfile.mkdtemp(prefix="proctor-votekeys-"))),
        directory=lambda: directory or ApproverDirectory(),
        max_cached_workflows=1000 if sticky else 0,
        sandboxed=sandboxed,
        signature_window_seconds=signature_window_seconds,
    ):
        yield


@asynccontextmanager
async def harness(
    temporal: TemporalClient,
    pool: asyncpg.Pool,
    *,
    notifier: SlackNotifier | None = None,
    directory: ApproverDirectory | None = None,
    sandboxed: bool = False,
) -> AsyncIterator[Harness]:
    task_queue = f"proctor-test-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="proctor-votekeys-") as folder:
        vote_keys = VoteKeyDirectory(Path(folder))
        async with running_worker(
            temporal,
            pool,
            task_queue,
            notifier=notifier,
            directory=directory,
            sandboxed=sandboxed,
            vote_keys=vote_keys,
        ):
            yield Harness(Client(temporal, task_queue=task_queue), pool, task_queue, vote_keys)


async def eventually(condition: Callable[[], object], seconds: float = 20.0) -> None:
    """Wait until `condition()` (sync or async) is true: work that happens after an ack, a
    metric scraped, a lock taken in another process."""
    async with asyncio.timeout(seconds):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)
