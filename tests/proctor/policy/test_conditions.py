from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from proctor.models import AgentInfo, AgentStatus, Effect, PolicyQuery
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.policy.conditions import (
    ConditionEvaluationError,
    ConditionSyntaxError,
    compile_condition,
)
from proctor.policy.loader import PolicySet, parse_policy_text

TOOLKIT = Path(__file__).parent / "toolkit_format"
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


def engine(text: str) -> PolicyEngine:
    return PolicyEngine(PolicySet((parse_policy_text(text.encode(), "p.yaml"),), "v"))


def decide(
    policy: PolicyEngine,
    action: str,
    params: dict[str, object] | None = None,
    who: AgentInfo | None = None,
):
    return policy.decide(
        PolicyQuery(agent=who or agent(), action=action, params=params or {}), at=NOON
    )


def test_toolkit_format_loads_unchanged_and_decides_as_documented() -> None:
    policy = PolicyEngine(load_policy_dir(TOOLKIT))
    billing = agent("billing-agent", role="billing")
    assert decide(policy, "read:invoice", who=billing).effect is Effect.ALLOW
    assert decide(policy, "delete:invoice", who=billing).effect is Effect.DENY
    assert decide(policy, "read:payroll", who=billing).effect is Effect.DENY
    small = decide(policy, "issue:credit", {"amount": 100}, who=billing)
    assert small.effect is Effect.ALLOW
    large = decide(policy, "issue:credit", {"amount": 900}, who=billing)
    assert large.effect is Effect.ESCALATE
    assert large.escalation is not None
    assert large.escalation.approvers == ("finance-lead@example.com",)
    assert large.escalation.timeout_seconds == 48 * 3600
    assert decide(policy, "write_off_requests", who=billing).effect is Effect.ESCALATE
    assert decide(policy, "read:invoice", who=agent("other")).rule_id == "default-deny"


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


def test_cel_when_and_unless_over_params_agent_time_request() -> None:
    policy = engine("""
escalation: {approvers: [boss@x.io]}
permissions:
  allow:
    - action: refund
      when: params.amount <= 500 && params.currency == "USD"
    - action: report
      when: time.getHours("UTC") >= 9 && time.getHours("UTC") < 17
    - action: trusted_only
      when: agent.trust >= 90 && agent.role == "support"
  escalate:
    - action: refund
      when: params.amount > 500
      unless: request.id.startsWith("test-")
""")
    assert decide(policy, "refund", {"amount": 20, "currency": "USD"}).effect is Effect.ALLOW
    assert decide(policy, "refund", {"amount": 20, "currency": "EUR"}).effect is Effect.DENY
    assert decide(policy, "refund", {"amount": 900, "currency": "USD"}).effect is Effect.ESCALATE
    assert decide(policy, "report").effect is Effect.ALLOW
    night = policy.decide(
        PolicyQuery(agent=agent(), action="report", params={}),
        at=datetime(2026, 11, 23, 23, tzinfo=UTC),
    )
    assert night.effect is Effect.DENY
    assert decide(policy, "trusted_only", who=agent(trust=95)).effect is Effect.ALLOW
    assert decide(policy, "trusted_only", who=agent(trust=80)).effect is Effect.DENY
    testing = policy.decide(
        PolicyQuery(
            agent=agent(),
            action="refund",
            request_id="test-1",
            params={"amount": 900, "currency": "GBP"},
        ),
        at=NOON,
    )
    assert testing.effect is Effect.DENY  # escalate skipped by unless, allow needs USD ≤ 500


def test_condition_errors_resolve_towards_the_stricter_outcome() -> None:
    policy = engine("""
permissions:
  allow: [{action: pay, when: params.amount < 100}]
  deny: [{action: pay, when: params.country == "XX"}]
""")
    # `country` missing: the deny rule's condition fails, so the deny applies.
    assert decide(policy, "pay", {"amount": 5}).rule_id == "p:deny:pay"
    # `amount` is a string: the allow rule's condition fails, so it does not allow.
    assert decide(policy, "pay", {"amount": "5", "country": "FR"}).rule_id == "default-deny"


def test_explain_lists_every_rule_and_why() -> None:
    policy = engine(
        "permissions:\n  allow: ['read:*', {action: pay, when: params.n < 3}]\n"
        "  deny: ['delete:*']\n"
    )
    explanation = policy.explain(PolicyQuery(agent=agent(), action="pay", params={"n": 5}), at=NOON)
    assert explanation.decision.rule_id == "default-deny"
    why = {c.rule.rule_id: c.verdict.why for c in explanation.considered}
    assert why["p:deny:delete:*"] == "action does not match 'delete:*'"
    assert why["p:allow:pay"] == "when is false: params.n < 3"


@pytest.mark.parametrize(
    "source, words",
    [
        ("params.amount >", "Syntax error"),
        ("1 + 'a' == 2", "no matching overload"),
        ("amount > 5", "undeclared reference to 'amount'"),
        ("params.amount + 1", "not a boolean"),
    ],
)
def test_bad_conditions_are_refused_at_load(source: str, words: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=words):
        compile_condition("when", source)


def test_toolkit_condition_sees_params_as_names() -> None:
    condition = compile_condition("condition", "amount > 500")
    base = {"agent": {}, "request": {}, "time": NOON}
    assert condition.evaluate({"params": {"amount": 501}, **base})
    assert not condition.evaluate({"params": {"amount": 5}, **base})
    with pytest.raises(ConditionEvaluationError):
        condition.evaluate({"params": {}, **base})


def test_findings_and_notes() -> None:
    policy = PolicyEngine(load_policy_dir(TOOLKIT))
    notes = [str(n) for n in policy.notes]
    assert notes == []  # every toolkit field takes effect, the audit section included
    rules = policy.audit_rules
    assert rules.retention_days == 3650 and {"iban", "card_number"} <= rules.sensitive_fields
    limits = {limit.name: limit for limit in policy.files[0].rate_limits}
    assert limits["credits_per_day"].match == "credit"
    assert limits["actions_per_minute"].window_seconds == 60
    shadowed = engine(
        "permissions:\n  allow: ['read:secrets', 'read:*', 'x']\n"
        "  escalate: [{action: 'admin:*', approvers: [a@x.io]}]\n"
        "  deny: ['read:secrets', 'admin*']\n"
    )
    assert [str(f) for f in shadowed.findings] == [
        "p.yaml:3: permissions.escalate.0: unreachable: 'admin:*' is always denied by "
        "p:deny:admin* (p.yaml)",
        "p.yaml:2: permissions.allow.0: unreachable: 'read:secrets' is always denied by "
        "p:deny:read:secrets (p.yaml)",
    ]


def test_untimed_rate_limit_is_a_note_not_an_error() -> None:
    policy = engine("permissions: {allow: [x]}\nrate_limits: {comments_per_review: 3}\n")
    assert [str(n) for n in policy.notes] == [
        "p.yaml:2: rate_limits.comments_per_review: not enforced: 'review' is not a time unit "
        "(second, minute, hour, day, week)"
    ]


def test_request_time_is_usable_as_a_timestamp() -> None:
    policy = engine(
        "permissions:\n  allow:\n    - action: x\n"
        "      when: timestamp(request.requested_at) <= time\n"
    )
    query = PolicyQuery(
        agent=agent(), action="x", params={}, requested_at=datetime(2026, 11, 23, 11, tzinfo=UTC)
    )
    assert policy.decide(query, at=NOON).effect is Effect.ALLOW


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
    files = (
        parse_policy_text(
            b"trust: {weights: {success: 2, failure: -1}}\npermissions: {allow: [x]}\n",
            "defaults.yaml",
        ),
        parse_policy_text(b"agent: a1\ntrust: {weights: {failure: -20}}\n", "a1.yaml"),
    )
    policy = PolicyEngine(PolicySet(files, "v"))
    weights = decide(policy, "x").trust
    assert weights is not None
    assert (weights.success, weights.failure, weights.refused_request) == (2, -20, -10)
