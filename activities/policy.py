"""evaluate_policy: a pure decision, run as a local activity so it costs no server round trip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from proctor.contract import EVALUATE_POLICY
from proctor.models import Decision, PolicyQuery
from proctor.policy import PolicyEngine


class PolicyActivities:
    def __init__(self, engine: Callable[[], PolicyEngine]) -> None:
        """`engine` returns the policy set in force (so a reload swaps it atomically)."""
        self.engine = engine

    @activity.defn(name=EVALUATE_POLICY)
    async def evaluate_policy(self, query: PolicyQuery) -> Decision:
        # The decision time is this attempt's clock; the workflow records the decision.
        return self.engine().decide(query, at=datetime.now(UTC))
