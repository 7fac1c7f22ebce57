from __future__ import annotations

import pytest

from proctor.models import AgentInfo, AgentStatus, Effect, PolicyQuery
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text


def engine(*texts: str) -> PolicyEngine:
    files = tuple(parse_policy_text(t.encode(), f"f{i}.yaml") for i, t in enumerate(texts))
    return PolicyEngine(PolicySet(files, "test"))


def decide(policy: PolicyEngine, action: str, agent_id: str = "a1", role: str = "support"):
    agent = AgentInfo(
        agent_id=agent_id,
        display_name=agent_id,
        role=role,
        owner="o@x.io",
        trust_score=100,
        status=AgentStatus.ACTIVE,
    )
    return policy.decide(PolicyQuery(agent=agent, action=action, params={}))


def test_deny_beats_escalate_beats_allow_beats_default() -> None:
    policy = engine("""
permissions:
  allow: ["*"]
  escalate: [{action: "pay:*", approvers: [boss]}]
  deny: ["pay:external"]
""")
    assert decide(policy, "pay:external").effect is Effect.DENY
    assert decide(policy, "pay:internal").effect is Effect.ESCALATE
    assert decide(policy, "read").effect is Effect.ALLOW
    assert (
        decide(engine("agent: someone-else\npermissions: {allow: ['*']}"), "x").rule_id
        == "default-deny"
    )


def test_deny_in_any_file_wins_over_allow_in_another() -> None:
    policy = engine(
        "agent: a1\npermissions: {allow: ['delete:*']}", "permissions: {deny: ['delete:customer']}"
    )
    assert decide(policy, "delete:customer").effect is Effect.DENY
    assert decide(policy, "delete:draft").effect is Effect.ALLOW


@pytest.mark.parametrize(
    "pattern, action, matches",
    [
        ("read:*", "read:orders", True),
        ("read:*", "read:orders:42", True),
        ("read:*", "read", False),
        ("*:orders", "write:orders", True),
        ("a.b", "axb", False),
        ("refund_requests", "refund_requests", True),
        ("refund_requests", "refund_requests_all", False),
    ],
)
def test_wildcards_are_globs_not_regexes(pattern: str, action: str, matches: bool) -> None:
    policy = engine(f"permissions: {{allow: ['{pattern}']}}")
    assert (decide(policy, action).effect is Effect.ALLOW) is matches


def test_targets_agent_agents_role() -> None:
    policy = engine(
        "agent: a1\npermissions: {allow: [x]}",
        "agents: [a2, a3]\npermissions: {allow: [y]}",
        "role: finance\npermissions: {allow: [z]}",
    )
    assert decide(policy, "x", "a1").effect is Effect.ALLOW
    assert decide(policy, "x", "a2").effect is Effect.DENY
    assert decide(policy, "y", "a3").effect is Effect.ALLOW
    assert decide(policy, "z", "a9", role="finance").effect is Effect.ALLOW
    assert decide(policy, "z", "a9", role="support").effect is Effect.DENY


def test_escalation_settings_inherit_file_defaults() -> None:
    policy = engine("""
escalation: {approvers: [alice, bob], timeout: 2h}
permissions:
  escalate:
    - refund
    - {action: wire, quorum: 2, on_timeout: approve, timeout: 7d, id: wires, reason: big}
""")
    refund = decide(policy, "refund")
    assert refund.escalation is not None
    assert refund.escalation.approvers == ("alice", "bob")
    assert refund.escalation.timeout_seconds == 7200
    wire = decide(policy, "wire")
    assert wire.rule_id == "wires" and wire.reason == "big"
    assert wire.escalation is not None
    assert (
        wire.escalation.quorum,
        wire.escalation.timeout_seconds,
        wire.escalation.on_timeout,
    ) == (2, 7 * 86400, "approve")


def test_decision_carries_policy_version() -> None:
    assert decide(engine("permissions: {allow: [x]}"), "x").policy_version == "test"
