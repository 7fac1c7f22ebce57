from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proctor.models import AgentStatus, DelegationView, Effect, PolicyQuery
from proctor.policy.decide import condition_context
from tests.helpers.policies import NOON, agent, decide, engine


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


def test_of_several_rules_that_apply_the_most_specific_is_reported_and_all_are_listed() -> None:
    policy = engine(
        "permissions: {allow: ['read:*', {action: 'read:orders', reason: mine}]}",
        "permissions: {allow: ['read:ord*']}",
    )
    decision = decide(policy, "read:orders")
    assert (decision.rule_id, decision.policy_file) == ("p:allow:read:orders", "p.yaml")
    assert decision.reason == "mine"
    assert decision.also_matched == ("p1:allow:read:ord*", "p:allow:read:*")


def test_a_conditional_rule_is_more_specific_than_the_same_pattern_without_one() -> None:
    policy = engine(
        "permissions: {deny: [{action: x, reason: always}]}",
        "permissions: {deny: [{action: x, when: 'params.n > 1', reason: big}]}",
    )
    assert decide(policy, "x", {"n": 2}).reason == "big"
    assert decide(policy, "x", {"n": 0}).reason == "always"


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
    assert decide(policy, "x", who=agent("a1")).effect is Effect.ALLOW
    assert decide(policy, "x", who=agent("a2")).effect is Effect.DENY
    assert decide(policy, "y", who=agent("a3")).effect is Effect.ALLOW
    assert decide(policy, "z", who=agent("a9", role="finance")).effect is Effect.ALLOW
    assert decide(policy, "z", who=agent("a9", role="support")).effect is Effect.DENY


def test_decision_carries_policy_version_and_the_default_deny_says_why() -> None:
    policy = engine("permissions: {allow: [x]}")
    assert decide(policy, "x").policy_version == "v"
    refused = decide(policy, "y")
    assert (refused.rule_id, refused.policy_version) == ("default-deny", "v")
    assert refused.reason == "no rule allows 'y' for agent 'a1' (role 'support')"


def test_deny_carries_no_rate_limits_allow_carries_them() -> None:
    policy = engine("rate_limits: {actions_per_minute: 5}\npermissions: {allow: [x], deny: [y]}\n")
    assert [limit.name for limit in decide(policy, "x").rate_limits] == ["actions_per_minute"]
    assert decide(policy, "y").rate_limits == ()


def test_explain_lists_every_rule_and_why() -> None:
    policy = engine(
        "permissions:\n  allow: ['read:*', {action: pay, when: params.n < 3}]\n"
        "  deny: ['delete:*']\n",
        "agent: someone-else\npermissions: {allow: [pay]}\n",
    )
    explanation = policy.explain(PolicyQuery(agent=agent(), action="pay", params={"n": 5}), at=NOON)
    assert explanation.decision.rule_id == "default-deny"
    assert [(c.rule.rule_id, c.verdict.why) for c in explanation.considered] == [
        ("p:deny:delete:*", "action does not match 'delete:*'"),
        ("p:allow:pay", "when is false: params.n < 3"),
        ("p:allow:read:*", "action does not match 'read:*'"),
    ]
    assert explanation.contributing == ()
    assert (explanation.files_applying, explanation.files_not_applying) == (
        ("p.yaml",),
        ("p1.yaml",),
    )


def test_decision_for_a_rule_is_what_decide_returns_for_it() -> None:
    policy = engine(
        "escalation: {approvers: [boss@x.io]}\ntrust: {minimum_score: 70}\n"
        "permissions: {allow: [x], escalate: [y]}\n"
    )
    rules = {rule.pattern: rule for rule in policy.files[0].rules}
    for who in (agent(trust=90), agent(trust=60)):
        for action in ("x", "y"):
            assert policy.decision_for(rules[action], who) == decide(policy, action, who=who)
    assert policy.decision_for(rules["x"], agent(trust=60)).rule_id == "trust-minimum"


def test_approvers_for_an_agent_come_from_its_files_and_trust_gate() -> None:
    policy = engine(
        "escalation: {approvers: [gate@x.io]}\ntrust: {minimum_score: 50}\n",
        "agent: a1\npermissions:\n  escalate:\n"
        "    - {action: x, approvers: [a@x.io, b@x.io]}\n"
        "    - {action: y, approvers: [b@x.io, c@x.io]}\n",
        "agent: a2\npermissions: {escalate: [{action: z, approvers: [d@x.io]}]}\n",
    )
    assert policy.approvers_for(agent("a1")) == ("a@x.io", "b@x.io", "c@x.io", "gate@x.io")
    assert policy.approvers_for(agent("a3")) == ("gate@x.io",)


def test_condition_context_is_what_conditions_see_of_a_request() -> None:
    who = agent(trust=88).model_copy(update={"status": AgentStatus.SUSPENDED})
    query = PolicyQuery(agent=who, action="pay", params={"n": 1}, request_id="r-1")
    context = condition_context(query, NOON)
    assert context == {
        "params": {"n": 1},
        "agent": {
            "id": "a1",
            "role": "support",
            "owner": "o@x.io",
            "trust": 88.0,
            "status": "suspended",
        },
        "request": {
            "id": "r-1",
            "action": "pay",
            "requested_at": NOON.isoformat(),
            "delegation": {"chain": [], "depth": 0, "root": ""},
        },
        "time": NOON,
    }
    earlier = datetime(2026, 11, 23, 11, tzinfo=UTC)
    sent = query.model_copy(update={"requested_at": earlier})
    assert condition_context(sent, NOON)["request"]["requested_at"] == earlier.isoformat()


def on_behalf_of(*chain: str) -> DelegationView:
    return DelegationView(chain=chain, depth=len(chain) - 1, root=chain[0])


DELEGATED = """
permissions:
  allow: [pay]
  deny: [{action: pay, id: too-deep, when: request.delegation.depth > 1}]
  escalate:
    - {action: pay, id: for-alice, approvers: [b@x.io], when: request.delegation.root == "alice"}
"""


@pytest.mark.parametrize(
    "delegation, rule",
    [
        (DelegationView(), "p:allow:pay"),
        (on_behalf_of("bob", "agent:a1"), "p:allow:pay"),
        (on_behalf_of("alice", "agent:a1"), "for-alice"),
        (on_behalf_of("bob", "agent:planner", "agent:a1"), "too-deep"),
        (on_behalf_of("alice", "agent:planner", "agent:a1"), "too-deep"),
    ],
)
def test_conditions_see_the_delegation_chain(delegation: DelegationView, rule: str) -> None:
    query = PolicyQuery(agent=agent(), action="pay", params={}, delegation=delegation)
    assert engine(DELEGATED).decide(query, at=NOON).rule_id == rule


def test_a_request_on_no_ones_behalf_has_an_empty_chain_not_a_missing_one() -> None:
    policy = engine(
        "permissions: {allow: [{action: pay, when: 'size(request.delegation.chain) == 0'}]}\n"
    )
    assert decide(policy, "pay").effect is Effect.ALLOW
    query = PolicyQuery(
        agent=agent(), action="pay", params={}, delegation=on_behalf_of("bob", "agent:a1")
    )
    assert policy.decide(query, at=NOON).effect is Effect.DENY
