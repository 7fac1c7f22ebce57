"""Shadow mode: shadow rules are decided alongside the enforced ones and never change what the
enforced decision is."""

from __future__ import annotations

import pytest

from proctor.models import Effect, PolicyQuery
from proctor.policy import PolicyEngine, PolicyError
from proctor.policy.lint import nobody_approves, unknown_roles
from proctor.policy.loader import parse_policy_text
from proctor.policy.shadow import ShadowDecision
from tests.helpers.policies import NOON, agent, decide, engine


def shadow(
    policy: PolicyEngine, action: str, params: dict[str, object] | None = None, trust: float = 100
) -> ShadowDecision | None:
    query = PolicyQuery(agent=agent(trust=trust), action=action, params=params or {})
    return policy.shadow_decide(query, policy.decide(query, at=NOON), at=NOON)


def test_a_shadow_deny_over_an_enforced_allow_changes_nothing_and_disagrees() -> None:
    policy = engine(
        "permissions: {allow: ['refund:*']}",
        "mode: shadow\npermissions: {deny: [{action: 'refund:*', id: no-refunds}]}",
    )
    assert decide(policy, "refund:small").effect is Effect.ALLOW
    found = shadow(policy, "refund:small")
    assert found is not None and not found.agree
    assert (found.enforced_effect, found.shadow_effect) == (Effect.ALLOW, Effect.DENY)
    assert (found.enforced_rule, found.shadow_rule, found.rule) == (
        "p:allow:refund:*",
        "no-refunds",
        "no-refunds",
    )
    assert found.payload()["agree"] is False


def test_a_rule_may_be_shadow_in_an_enforced_file() -> None:
    policy = engine("""
permissions:
  allow: ["read:*"]
  deny: [{action: "read:secrets", mode: shadow, id: try-deny}]
""")
    assert decide(policy, "read:secrets").effect is Effect.ALLOW
    found = shadow(policy, "read:secrets")
    assert found is not None and found.shadow_rule == "try-deny" and not found.agree


def test_a_shadow_rule_that_would_decide_the_same_agrees() -> None:
    policy = engine(
        "permissions: {deny: ['delete:*']}",
        "mode: shadow\npermissions: {deny: [{action: 'delete:x', id: also-deny}]}",
    )
    found = shadow(policy, "delete:x")
    assert found is not None and found.agree and found.rule == "also-deny"
    assert found.shadow_effect is Effect.DENY and found.enforced_rule == "p:deny:delete:*"


def test_no_shadow_decision_where_no_shadow_rule_applies() -> None:
    policy = engine(
        "permissions: {allow: ['*']}",
        "mode: shadow\npermissions: {deny: [{action: x, when: 'params.n > 1'}]}",
    )
    assert shadow(policy, "y") is None
    assert shadow(policy, "x", {"n": 0}) is None
    assert shadow(engine("permissions: {allow: ['*']}"), "x") is None
    assert shadow(policy, "x", {"n": 2}) is not None


def test_a_shadow_escalation_never_asks_anyone_and_its_approvers_are_not_the_agents() -> None:
    policy = engine("""
permissions:
  allow: ["pay:*"]
  escalate: [{action: "pay:big", approvers: [carol], mode: shadow}]
""")
    decision = decide(policy, "pay:big")
    assert decision.effect is Effect.ALLOW and decision.escalation is None
    assert "carol" not in policy.approvers_for(agent())
    found = shadow(policy, "pay:big")
    assert found is not None and found.shadow_effect is Effect.ESCALATE and not found.agree


def test_a_shadow_files_limits_trust_and_escalation_defaults_do_not_apply() -> None:
    policy = engine(
        "permissions: {allow: ['*'], escalate: ['pay:*']}\nescalation: {approvers: [dave]}",
        """
mode: shadow
rate_limits: {actions_per_minute: 1}
trust: {minimum_score: 90, below_minimum: deny, weights: {failure: -50}}
escalation: {approvers: [mallory], quorum: 2}
permissions: {deny: [{action: "drop:*"}]}
""",
    )
    assert decide(policy, "read", who=agent(trust=10)).effect is Effect.ALLOW
    assert decide(policy, "read").rate_limits == ()
    assert policy.trust_policy(agent()).failure == -5
    escalation = decide(policy, "pay:x").escalation
    assert escalation is not None and escalation.approvers == ("dave",)


def test_a_shadow_default_file_does_not_set_enforced_escalation_defaults() -> None:
    policy = engine(
        "agent: a1\npermissions: {escalate: ['pay:*']}",
        "mode: shadow\nescalation: {approvers: [mallory]}\npermissions: {deny: ['x']}",
    )
    escalation = decide(policy, "pay:x").escalation
    assert escalation is not None and escalation.approvers == ()  # the default approvers


def test_the_trust_gate_holds_back_a_shadow_allow_as_it_would_an_enforced_one() -> None:
    policy = engine(
        "trust: {minimum_score: 50, below_minimum: deny}\npermissions: {deny: ['x']}",
        "mode: shadow\npermissions: {allow: [{action: x, id: try-allow}]}",
    )
    found = shadow(policy, "x", trust=10)
    assert found is not None and found.agree  # deny either way: the allow loses to the deny
    assert found.rule == "try-allow"


def test_enforced_decisions_are_those_of_the_set_without_its_shadow_rules() -> None:
    enforced = "permissions: {allow: ['read:*'], deny: ['read:secret*']}"
    trial = "mode: shadow\npermissions: {deny: ['read:*'], allow: ['read:secrets']}"
    with_trial, without = engine(enforced, trial), engine(enforced)
    for action in ("read:a", "read:secrets", "write:a"):
        assert decide(with_trial, action) == decide(without, action).model_copy(
            update={"policy_version": with_trial.version}
        )


@pytest.mark.parametrize(
    "text, where",
    [
        ("mode: log\npermissions: {allow: [x]}", "p.yaml:1: mode:"),
        (
            "permissions:\n  allow:\n    - {action: x, mode: dry}\n",
            "p.yaml:3: permissions.allow.0.mode:",
        ),
    ],
)
def test_a_mode_other_than_enforce_or_shadow_is_an_error_at_its_line(text: str, where: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_text(text.encode(), "p.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith(where) and "'enforce' or 'shadow'" in str(problem)


def test_a_shadow_deny_makes_no_enforced_rule_unreachable_but_an_enforced_deny_a_shadow_one() -> (
    None
):
    policy = engine(
        "permissions: {allow: ['refund:small']}",
        "mode: shadow\npermissions: {deny: ['refund:*'], allow: ['delete:x']}",
        "permissions: {deny: ['delete:*']}",
    )
    assert [p.message for p in policy.findings] == [
        "unreachable: 'delete:x' is always denied by p2:deny:delete:* (p2.yaml)"
    ]


def test_shadow_escalations_are_not_warned_about_as_nobody_approves() -> None:
    policy = engine(
        "permissions: {escalate: [{action: x, mode: shadow}, {action: y, approvers: [role:r]}]}"
    )
    assert [p.field for p in nobody_approves(policy.files, (), "nobody")] == []
    shadow_roles = engine(
        "permissions: {escalate: [{action: y, approvers: [role:r], mode: shadow}]}"
    )
    assert unknown_roles(shadow_roles.files, frozenset()) == []
    assert len(unknown_roles(policy.files, frozenset())) == 1


def test_a_rules_mode_overrides_its_files() -> None:
    policy = engine("""
mode: shadow
rate_limits: {actions_per_minute: 5}
permissions:
  allow: [{action: "read:*", mode: enforce}]
  deny: ["read:secrets"]
""")
    decision = decide(policy, "read:secrets")
    assert decision.effect is Effect.ALLOW and decision.rate_limits == ()
    found = shadow(policy, "read:secrets")
    assert found is not None and found.shadow_effect is Effect.DENY
