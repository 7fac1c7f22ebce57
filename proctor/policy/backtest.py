"""Backtesting a policy change: which past requests would now be decided differently."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from proctor.models import Decision, PolicyQuery
from proctor.policy.decide import PolicyEngine


@dataclass(frozen=True)
class PastRequest:
    query: PolicyQuery
    at: datetime


@dataclass(frozen=True)
class Change:
    request: PastRequest
    before: Decision
    after: Decision

    def __str__(self) -> str:
        q = self.request.query
        return (
            f"{q.agent.agent_id} {q.action} {q.params}: {self.before.effect.value} "
            f"({self.before.rule_id}) -> {self.after.effect.value} ({self.after.rule_id})"
        )


def changes(old: PolicyEngine, new: PolicyEngine, requests: Iterable[PastRequest]) -> list[Change]:
    """Requests whose effect differs between the two sets, each decided at its original time."""
    found = []
    for request in requests:
        before = old.decide(request.query, at=request.at)
        after = new.decide(request.query, at=request.at)
        if before.effect is not after.effect:
            found.append(Change(request, before, after))
    return found
