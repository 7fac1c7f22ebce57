"""Identity and trust end to end: provable refusals cost trust, zero suspends, keys rotate with
grace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from proctor import ActionStatus
from proctor.models import AgentStatus, ExecutionMode, ExecutionSpec
from proctor.signing import AgentKey
from proctor.stores.agents import AgentStore
from tests.helpers.harness import Harness

HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)


async def test_repeated_provable_refusals_suspend_the_agent(gov: Harness) -> None:
    """Requests the agent itself signed with a stale clock are its own doing: each costs 10."""
    key = await gov.new_agent()
    for _ in range(10):
        stale = key.new_request(
            "read:orders", {}, HANDLER, requested_at=datetime.now(UTC) - timedelta(hours=1)
        )
        await gov.proctor.submit(stale, handler=lambda p: None, key=key)
    record = await AgentStore(gov.pool).get(key.agent_id)
    assert record is not None
    assert (record.info.trust_score, record.info.status) == (0, AgentStatus.SUSPENDED)

    calls: list[object] = []
    outcome = await gov.proctor.execute(key, "read:orders", {}, handler=calls.append)
    assert outcome.decision.rule_id == "identity:suspended_agent"
    assert calls == []


async def test_a_request_signed_before_revocation_is_refused_after_it(gov: Harness) -> None:
    key = await gov.new_agent()
    signed = key.new_request("read:orders", {}, HANDLER)
    await AgentStore(gov.pool).set_status(key.agent_id, AgentStatus.REVOKED)
    outcome = await gov.proctor.submit(signed, handler=lambda p: None, key=key)
    assert outcome.decision.rule_id == "identity:revoked_agent"


async def test_replayed_nonce_is_refused_by_another_worker(
    gov: Harness, dev_server: WorkflowEnvironment
) -> None:
    from tests.helpers.harness import harness

    key = await gov.new_agent()
    original = key.new_request("read:orders", {}, HANDLER)
    assert (await gov.proctor.submit(original, handler=lambda p: None, key=key)).ok
    replay = key.sign(original.model_copy(update={"request_id": original.request_id + "-2"}))
    async with harness(dev_server.client, gov.pool) as other_worker:
        outcome = await other_worker.proctor.submit(replay, handler=lambda p: None, key=key)
    assert outcome.decision.rule_id == "identity:replayed_nonce"


async def test_rotated_key_keeps_working_through_the_grace_period_only(
    gov_skipping: Harness, time_skipping: WorkflowEnvironment
) -> None:
    old = await gov_skipping.new_agent("rsa-2048")
    new = AgentKey.generate(old.agent_id, "ed25519")
    await AgentStore(gov_skipping.pool).rotate_key(
        old.agent_id, new.public_key_pem, grace=timedelta(hours=1)
    )

    assert (await gov_skipping.proctor.execute(old, "read:a", {}, handler=lambda p: 1)).ok
    assert (await gov_skipping.proctor.execute(new, "read:b", {}, handler=lambda p: 1)).ok

    await time_skipping.sleep(timedelta(hours=2))
    now = await time_skipping.get_current_time()
    late_old = old.new_request("read:c", {}, HANDLER, requested_at=now)
    refused = await gov_skipping.proctor.submit(late_old, handler=lambda p: 1, key=old)
    assert refused.decision.rule_id == "identity:retired_key"
    # The test server's clock may have skipped on while the refusal was awaited: read it again.
    now = await time_skipping.get_current_time()
    late_new = new.new_request("read:d", {}, HANDLER, requested_at=now)
    assert (
        await gov_skipping.proctor.submit(late_new, handler=lambda p: 1, key=new)
    ).status is ActionStatus.COMPLETED


async def test_200_concurrent_governed_outcomes_leave_exactly_the_arithmetic(
    gov: Harness,
) -> None:
    import asyncio

    key = await gov.new_agent(role="steady")
    await gov.pool.execute("UPDATE agents SET trust_score = 50 WHERE agent_id = $1", key.agent_id)

    def handler(fail: bool) -> Callable[[dict[str, object]], str]:
        def run(params: dict[str, object]) -> str:
            if fail:
                raise RuntimeError("planned failure")
            return "ok"

        return run

    plan = [i % 4 == 0 for i in range(200)]  # 50 failures, 150 successes
    outcomes = await asyncio.gather(
        *(
            gov.proctor.execute(key, "work:item", {"i": i}, handler=handler(fail))
            for i, fail in enumerate(plan)
        )
    )
    assert sum(o.status is ActionStatus.FAILED for o in outcomes) == 50
    record = await AgentStore(gov.pool).get(key.agent_id)
    assert record is not None
    assert record.info.trust_score == 50 + 150 * 0.25 - 50 * 0.25
