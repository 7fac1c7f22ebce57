from __future__ import annotations

from pathlib import Path

from proctor.models import Effect
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.policy.agent_view import RuleIndex, view_for
from proctor.policy.escalation import asks_default_approvers
from tests.helpers.policies import agent, decide, engine

TOOLKIT = Path(__file__).parent / "toolkit_format"


def test_a_view_holds_the_files_for_the_agent_and_their_rules_by_effect() -> None:
    policy = engine(
        "permissions: {deny: ['x:*']}\n",
        "agent: a1\npermissions: {allow: ['x:y', 'z']}\n",
        "role: finance\npermissions: {allow: [w]}\n",
    )
    view = view_for(policy.files, "a1", "support")
    assert [f.name for f in view.files] == ["p.yaml", "p1.yaml"]
    assert [r.rule_id for r in view.indexes[Effect.ALLOW].candidates("x:y")] == ["p1:allow:x:y"]
    assert [r.rule_id for r in view.indexes[Effect.DENY].candidates("x:y")] == ["p:deny:x:*"]
    assert view.indexes[Effect.ESCALATE].candidates("x:y") == []


def test_the_index_finds_exact_and_wildcard_rules_most_specific_first() -> None:
    policy = engine(
        "permissions: {allow: ['*', 'read:*', 'read:orders:*', 'read:orders:42', 'reads']}\n"
    )
    index = RuleIndex.build(policy.files[0].rules)
    assert [r.pattern for r in index.candidates("read:orders:42")] == [
        "read:orders:42",
        "read:orders:*",
        "read:*",
        "*",
    ]
    assert [r.pattern for r in index.candidates("read")] == ["*"]
    assert [r.pattern for r in index.candidates("")] == ["*"]


def test_trust_below_minimum_escalates_what_would_be_allowed() -> None:
    policy = PolicyEngine(load_policy_dir(TOOLKIT))
    shaky = agent("billing-agent", trust=60, role="billing")
    decision = decide(policy, "read:invoice", who=shaky)
    assert decision.effect is Effect.ESCALATE
    assert decision.rule_id == "trust-minimum"
    assert "60 is below the minimum 75" in decision.reason
    assert decide(policy, "delete:invoice", who=shaky).effect is Effect.DENY


def test_trust_below_minimum_can_deny() -> None:
    policy = engine(
        "trust: {minimum_score: 50, below_minimum: deny}\npermissions: {allow: ['*']}\n"
    )
    assert decide(policy, "x", who=agent(trust=49)).rule_id == "trust-minimum"
    assert decide(policy, "x", who=agent(trust=49)).effect is Effect.DENY
    assert decide(policy, "x", who=agent(trust=50)).effect is Effect.ALLOW


def test_the_strictest_minimum_holds_back_with_its_own_files_approvers() -> None:
    policy = engine(
        "escalation: {approvers: [lead@x.io]}\ntrust: {minimum_score: 50}\n"
        "permissions: {allow: ['*']}\n",
        "agent: a1\nescalation: {approvers: [risk@x.io], timeout: 1h}\n"
        "trust: {minimum_score: 80}\n",
    )
    held = decide(policy, "x", who=agent(trust=70))
    assert (held.effect, held.rule_id, held.policy_file) == (
        Effect.ESCALATE,
        "trust-minimum",
        "p1.yaml",
    )
    assert held.reason == "trust score 70 is below the minimum 80 set in p1.yaml"
    assert held.escalation is not None
    assert (held.escalation.approvers, held.escalation.timeout_seconds) == (("risk@x.io",), 3600)
    other = decide(policy, "x", who=agent("a2", trust=40))
    assert other.escalation is not None and other.escalation.approvers == ("lead@x.io",)


def test_a_trust_gate_whose_files_name_nobody_asks_the_default_approvers() -> None:
    """As an escalate rule naming nobody does (resolved when the request is decided)."""
    text = "trust: {minimum_score: 50}\npermissions: {allow: ['*']}\n"
    held = decide(engine(text), "x", who=agent(trust=40))
    assert (held.effect, held.rule_id) == (Effect.ESCALATE, "trust-minimum")
    assert held.escalation is not None and held.escalation.approvers == ()
    assert asks_default_approvers(held)


def test_a_trust_gate_nobody_can_be_asked_about_denies() -> None:
    text = (
        "escalation: {approvers: ['group:nobody']}\ntrust: {minimum_score: 50}\n"
        "rate_limits: {actions_per_minute: 5}\npermissions: {allow: ['*']}\n"
    )
    held = decide(engine(text), "x", who=agent(trust=40))
    assert (held.effect, held.rule_id, held.escalation, held.rate_limits) == (
        Effect.DENY,
        "trust-minimum",
        None,
        (),
    )


def test_autonomy_blocked_agents_wait_for_the_recovery_threshold() -> None:
    policy = engine(
        "escalation: {approvers: [boss@x.io]}\n"
        "trust: {minimum_score: 70, recovery_threshold: 80}\n"
        "permissions: {allow: ['*']}\n"
    )
    recovering = agent(trust=75).model_copy(update={"autonomy_blocked": True})
    decision = decide(policy, "x", who=recovering)
    assert (decision.effect, decision.rule_id) == (Effect.ESCALATE, "trust-minimum")
    assert "has not yet recovered to 80" in decision.reason
    assert decide(policy, "x", who=agent(trust=75)).effect is Effect.ALLOW
    recovered = agent(trust=80).model_copy(update={"autonomy_blocked": True})
    assert decide(policy, "x", who=recovered).effect is Effect.ALLOW
    assert decision.trust is not None
    assert (decision.trust.minimum_score, decision.trust.recovery_threshold) == (70, 80)


def test_trust_weights_come_from_the_most_specific_file() -> None:
    policy = engine(
        "trust: {weights: {success: 2, failure: -1}}\npermissions: {allow: [x]}\n",
        "agent: a1\ntrust: {weights: {failure: -20}}\n",
    )
    weights = decide(policy, "x").trust
    assert weights is not None
    assert (weights.success, weights.failure, weights.refused_request) == (2, -20, -10)
    assert policy.trust_policy(agent("a2")).failure == -1


def test_files_of_one_tier_give_the_strictest_weight_and_gate_in_any_order() -> None:
    texts = (
        "agent: a1\ntrust: {minimum_score: 70, below_minimum: escalate, weights: "
        "{success: 2, failure: -3}}\nescalation: {approvers: [b@x.io]}\n"
        "permissions: {allow: [x]}\n",
        "agent: a1\ntrust: {minimum_score: 70, below_minimum: deny, weights: "
        "{success: 1, failure: -9}}\n",
    )
    for ordered in (texts, texts[::-1]):
        policy = engine(*ordered)
        weights = policy.trust_policy(agent())
        assert (weights.success, weights.failure) == (1, -9)
        held = decide(policy, "x", who=agent(trust=60))
        assert (held.effect, held.rule_id) == (Effect.DENY, "trust-minimum")
