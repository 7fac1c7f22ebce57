"""Policy sets written inline for the policy tests: YAML text in, an engine or its problems out.

The first text is `p.yaml`, the next `p1.yaml`, `p2.yaml`, … (rule ids and messages name them).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proctor.models import AgentInfo, AgentStatus, Decision, PolicyQuery
from proctor.policy import PolicyEngine, PolicyError
from proctor.policy.loader import PolicySet, parse_policy_text

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def agent(agent_id: str = "a1", trust: float = 100, role: str = "support") -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id,
        display_name=agent_id,
        role=role,
        owner="o@x.io",
        trust_score=trust,
        status=AgentStatus.ACTIVE,
    )


def policy_set(*texts: str) -> PolicySet:
    return PolicySet(
        tuple(parse_policy_text(text.encode(), f"p{i or ''}.yaml") for i, text in enumerate(texts)),
        "v",
    )


def engine(*texts: str) -> PolicyEngine:
    return PolicyEngine(policy_set(*texts))


def problems(*texts: str) -> list[str]:
    """The problems that stop the set loading, as `policy check` prints them."""
    with pytest.raises(PolicyError) as caught:
        engine(*texts)
    return [str(p) for p in caught.value.problems]


def decide(
    policy: PolicyEngine,
    action: str,
    params: dict[str, object] | None = None,
    who: AgentInfo | None = None,
) -> Decision:
    return policy.decide(
        PolicyQuery(agent=who or agent(), action=action, params=params or {}), at=NOON
    )
