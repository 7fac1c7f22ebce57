from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from proctor.models import Effect, PolicyQuery
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.policy.conditions import (
    ConditionEvaluationError,
    ConditionSyntaxError,
    compile_condition,
)
from tests.helpers.policies import NOON, agent, decide, engine

TOOLKIT = Path(__file__).parent / "toolkit_format"


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


def test_request_time_is_usable_as_a_timestamp() -> None:
    policy = engine(
        "permissions:\n  allow:\n    - action: x\n"
        "      when: timestamp(request.requested_at) <= time\n"
    )
    query = PolicyQuery(
        agent=agent(), action="x", params={}, requested_at=datetime(2026, 11, 23, 11, tzinfo=UTC)
    )
    assert policy.decide(query, at=NOON).effect is Effect.ALLOW
