"""Escalate rules that name no approvers: they load, and the decision asks the default approvers."""

from __future__ import annotations

from pathlib import Path

from proctor.models import Effect
from proctor.policy import PolicyEngine, load_policy_dir
from proctor.policy.escalation import asks_default_approvers, with_default_approvers
from proctor.policy.lint import nobody_approves
from tests.helpers.policies import agent, decide, engine, problems

TOOLKIT_FILE = Path(__file__).parents[3] / "policies" / "customer-service-agent.yaml"


def test_the_toolkit_file_loads_as_written(tmp_path: Path) -> None:
    (tmp_path / "customer-service-agent.yaml").write_bytes(TOOLKIT_FILE.read_bytes())
    policy = PolicyEngine(load_policy_dir(tmp_path))
    who = agent("customer-service-agent")
    refund = decide(policy, "refund_requests", who=who)
    assert refund.effect is Effect.ESCALATE
    assert refund.rule_id == "customer-service-agent:escalate:refund_requests"
    assert refund.escalation is not None and refund.escalation.approvers == ()
    assert asks_default_approvers(refund)
    assert decide(policy, "update:payment_info", who=who).effect is Effect.DENY
    assert decide(policy, "delete:account", who=who).effect is Effect.DENY
    assert decide(policy, "update:ticket_status", who=who).effect is Effect.ALLOW


def test_the_decision_records_the_default_approvers_it_was_given() -> None:
    refund = decide(engine("permissions: {escalate: [{action: r, quorum: 2, timeout: 1h}]}\n"), "r")
    asked = with_default_approvers(refund, ("ann@x.io", "bo@x.io"))
    assert asked.escalation is not None
    assert asked.escalation.approvers == ("ann@x.io", "bo@x.io")
    assert (asked.escalation.quorum, asked.escalation.timeout_seconds) == (2, 3600.0)
    assert not asks_default_approvers(asked)
    assert with_default_approvers(asked, ("other@x.io",)) == asked


def test_nobody_to_ask_times_out_denied_whatever_on_timeout_says() -> None:
    refund = decide(engine("permissions: {escalate: [{action: r, on_timeout: approve}]}\n"), "r")
    nobody = with_default_approvers(refund, ())
    assert nobody.escalation is not None
    assert (nobody.escalation.approvers, nobody.escalation.on_timeout) == ((), "deny")
    somebody = with_default_approvers(refund, ("ann@x.io",))
    assert somebody.escalation is not None and somebody.escalation.on_timeout == "approve"


def test_too_few_for_the_quorum_times_out_denied_too() -> None:
    refund = decide(
        engine("permissions: {escalate: [{action: r, quorum: 2, on_timeout: approve}]}\n"), "r"
    )
    one = with_default_approvers(refund, ("ann@x.io",)).escalation
    assert one is not None and (one.approvers, one.on_timeout) == (("ann@x.io",), "deny")
    two = with_default_approvers(refund, ("ann@x.io", "bo@x.io")).escalation
    assert two is not None and two.on_timeout == "approve"


def test_named_approvers_and_file_defaults_are_not_replaced() -> None:
    policy = engine(
        "agent: a1\npermissions: {escalate: [{action: r, approvers: [ann@x.io]}, s]}\n",
        "escalation: {approvers: [lead@x.io]}\n",
    )
    for action, approvers in (("r", ("ann@x.io",)), ("s", ("lead@x.io",))):
        decision = decide(policy, action)
        assert not asks_default_approvers(decision)
        assert with_default_approvers(decision, ("x@x.io",)) == decision
        assert decision.escalation is not None and decision.escalation.approvers == approvers


def test_allow_and_deny_decisions_are_left_alone() -> None:
    policy = engine("permissions: {allow: [a], deny: [d]}\n")
    for action in ("a", "d", "unknown"):
        decision = decide(policy, action)
        assert with_default_approvers(decision, ("x@x.io",)) == decision


def test_an_empty_approvers_list_is_an_error_not_the_defaults() -> None:
    assert problems("permissions: {escalate: [{action: r, approvers: []}]}\n") == [
        "p.yaml:1: permissions.escalate.0.approvers: Value error, approvers: [] names nobody; "
        "leave it out to ask the default approvers"
    ]


def test_nobody_approves_warns_at_each_rule_asking_nobody() -> None:
    policy = engine(
        "agent: a1\npermissions:\n  escalate:\n    - r\n    - {action: s, approvers: [x@x.io]}\n"
        "    - {action: t, ladder: [{after: 1h, approvers: [y@x.io]}], on_timeout: escalate}\n"
        "    - u\n"
    )
    found = [str(p) for p in nobody_approves(policy.files, (), "none configured")]
    assert found == [
        f"p.yaml:{line}: permissions.escalate.{index}: no approvers, and the default approvers "
        "(none configured) are nobody: such requests can only time out, and are then denied"
        for line, index in ((4, 0), (7, 3))
    ]
    assert nobody_approves(policy.files, ("ann@x.io",), "PROCTOR_DEFAULT_APPROVERS") == []


def test_nobody_approves_warns_where_the_defaults_cannot_reach_the_quorum() -> None:
    policy = engine("agent: a1\npermissions:\n  escalate:\n    - {action: r, quorum: 3}\n")
    assert [str(p) for p in nobody_approves(policy.files, ("a@x.io", "b@x.io"), "S")] == [
        "p.yaml:4: permissions.escalate.0: no approvers, and the default approvers (S) are 2, "
        "fewer than quorum 3: such requests can only time out, and are then denied"
    ]
    assert nobody_approves(policy.files, ("a@x.io", "b@x.io", "c@x.io"), "S") == []
