"""Several rules of one effect from different files: the decision they make together."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.models import Decision, Effect, PolicyQuery
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text
from tests.helpers.policies import NOON, agent, decide, engine

POLICIES = Path(__file__).parents[3] / "policies"
TOOLKIT = (
    "agent: customer-service-agent\n"
    "permissions:\n"
    "  allow: [read:customer_data, update:ticket_status]\n"
    '  deny: ["delete:*", update:payment_info]\n'
    "  escalate: [refund_requests, account_deletion]\n"
)
ORG = "escalation: {approvers: [alice@example.com]}\n"
SUPPORT = agent("customer-service-agent")


def shipped_beside_toolkit(toolkit_name: str, reverse: bool) -> PolicyEngine:
    """The shipped policies, an organisation default, and the toolkit's file under a name."""
    texts = [
        ("customer-service.yaml", (POLICIES / "customer-service.yaml").read_text()),
        ("defaults.yaml", (POLICIES / "defaults.yaml").read_text()),
        ("org.yaml", ORG),
        (toolkit_name, TOOLKIT),
    ]
    if reverse:
        texts.reverse()
    files = tuple(parse_policy_text(text.encode(), name) for name, text in texts)
    return PolicyEngine(PolicySet(files, "v"))


def named_apart(decision: Decision, name: str) -> Decision:
    """The decision with the toolkit file's name (and the rule ids made from it) neutral."""
    stem = name.removesuffix(".yaml")
    return decision.model_copy(
        update={
            "rule_id": decision.rule_id.replace(stem, "TOOLKIT"),
            "policy_file": (decision.policy_file or "").replace(name, "TOOLKIT"),
            "reason": decision.reason.replace(name, "TOOLKIT"),
            "also_matched": tuple(r.replace(stem, "TOOLKIT") for r in decision.also_matched),
        }
    )


@pytest.mark.parametrize(
    "action",
    ["refund_requests", "account_deletion", "delete:customer", "update:payment_info", "read:x"],
)
def test_renaming_or_reordering_the_toolkit_file_changes_no_decision(action: str) -> None:
    seen = set()
    for name in ("customer-service-agent.yaml", "zz-article.yaml", "00-first.yaml"):
        for reverse in (False, True):
            decision = decide(shipped_beside_toolkit(name, reverse), action, who=SUPPORT)
            seen.add(named_apart(decision, name).model_dump_json())
    assert len(seen) == 1, seen


def test_the_shipped_refund_rule_names_who_approves_and_the_toolkit_rule_agrees() -> None:
    """The toolkit's rule leaves approvers to the defaults: it narrows nobody."""
    decision = decide(
        shipped_beside_toolkit("zz-article.yaml", False), "refund_requests", who=SUPPORT
    )
    assert decision.effect is Effect.ESCALATE
    assert decision.rule_id == "refunds-need-approval"
    assert decision.also_matched == ("zz-article:escalate:refund_requests",)
    assert decision.escalation is not None
    assert decision.escalation.approvers == ("alice@example.com", "bob@example.com")


def test_the_deny_that_gives_its_reason_is_reported_and_the_other_listed() -> None:
    decision = decide(shipped_beside_toolkit("zz-article.yaml", True), "delete:x", who=SUPPORT)
    assert (decision.rule_id, decision.reason) == (
        "no-deletes",
        "Agents never delete customer data",
    )
    assert decision.also_matched == ("zz-article:deny:delete:*",)


def escalations(*rules: str) -> PolicyEngine:
    """One file per escalate rule (flow YAML), all for every agent."""
    return engine(*(f"permissions: {{escalate: [{rule}]}}\n" for rule in rules))


def test_named_approvers_intersect_and_every_setting_takes_the_strictest() -> None:
    policy = escalations(
        "{action: pay, approvers: [a@x.io, b@x.io, c@x.io], quorum: 1, timeout: 2h, "
        "reminders: [1h], severity: low, owner_may_approve: true, deny_vetoes: false, "
        "channel: C1}",
        "{action: 'pay*', approvers: [c@x.io, b@x.io], quorum: 2, timeout: 1h, "
        "reminders: [30m, 1h], severity: high, owner_may_approve: true, deny_vetoes: true, "
        "direct_messages: false, ladder: [{after: 20m, approvers: [d@x.io]}], "
        "on_timeout: escalate}",
    )
    decision = decide(policy, "pay")
    assert (decision.rule_id, decision.also_matched) == ("p:escalate:pay", ("p1:escalate:pay*",))
    e = decision.escalation
    assert e is not None
    assert e.approvers == ("b@x.io", "c@x.io")
    # on_timeout: deny prevails, so the deny rule's deadline (2h), not the escalate one's.
    assert (e.quorum, e.timeout_seconds, e.on_timeout) == (2, 7200.0, "deny")
    assert e.reminders_seconds == (1800.0, 3600.0)
    assert [(t.after_seconds, t.approvers) for t in e.ladder] == [(1200.0, ("d@x.io",))]
    assert (e.severity, e.channel) == ("high", "C1")
    assert (e.owner_may_approve, e.deny_vetoes, e.direct_messages) == (True, True, True)


@pytest.mark.parametrize(
    "first, second, timeout",
    [
        ("on_timeout: deny, timeout: 3h", "on_timeout: deny, timeout: 1h", 3600.0),
        ("on_timeout: approve, timeout: 3h", "on_timeout: approve, timeout: 1h", 10800.0),
        ("on_timeout: deny, timeout: 3h", "on_timeout: approve, timeout: 1h", 10800.0),
    ],
)
def test_the_deadline_is_set_by_the_rules_whose_timeout_outcome_prevails(
    first: str, second: str, timeout: float
) -> None:
    policy = escalations(
        f"{{action: pay, approvers: [a@x.io], {first}}}",
        f"{{action: pay, approvers: [a@x.io], {second}}}",
    )
    e = decide(policy, "pay").escalation
    assert e is not None
    assert e.timeout_seconds == timeout
    assert e.on_timeout == ("approve" if "deny" not in first + second else "deny")


@pytest.mark.parametrize(
    "first, second",
    [
        ("approvers: [a@x.io]", "approvers: [b@x.io]"),
        ("approvers: [a@x.io, b@x.io]", "approvers: [b@x.io, c@x.io], quorum: 2"),
        ("approvers: [a@x.io], on_timeout: approve", "approvers: ['role:finance']"),
    ],
)
def test_escalations_nobody_can_satisfy_together_are_denied(first: str, second: str) -> None:
    policy = escalations(f"{{action: pay, {first}}}", f"{{action: pay, {second}}}")
    decision = decide(policy, "pay")
    assert decision.effect is Effect.DENY
    assert decision.escalation is None and decision.rate_limits == ()
    assert decision.reason.startswith("escalate rules that all apply leave no approver")
    assert len(decision.also_matched) == 1


def test_rules_of_one_file_whose_order_is_swapped_decide_alike() -> None:
    forward = engine(
        "permissions:\n  deny: [{action: 'a*', reason: one}, {action: 'ab*', reason: two}]\n"
    )
    backward = engine(
        "permissions:\n  deny: [{action: 'ab*', reason: two}, {action: 'a*', reason: one}]\n"
    )
    assert decide(forward, "abc").reason == decide(backward, "abc").reason == "two"


def test_explain_lists_every_contributing_rule_reported_first() -> None:
    policy = escalations(
        "{action: pay, approvers: [a@x.io]}", "{action: 'p*', approvers: [a@x.io]}"
    )
    explanation = policy.explain(PolicyQuery(agent=agent(), action="pay", params={}), at=NOON)
    assert [r.rule_id for r in explanation.contributing] == ["p:escalate:pay", "p1:escalate:p*"]
    assert explanation.decision.also_matched == ("p1:escalate:p*",)


def test_rules_that_leave_approvers_to_the_organisation_narrow_nobody() -> None:
    unnamed = "permissions: {escalate: [pay]}\n"
    both_unnamed = decide(engine(unnamed, unnamed), "pay").escalation
    assert both_unnamed is not None and both_unnamed.approvers == ()
    one_named = decide(
        engine(unnamed, "permissions: {escalate: [{action: pay, approvers: [a@x.io]}]}"), "pay"
    )
    assert one_named.escalation is not None and one_named.escalation.approvers == ("a@x.io",)


def test_an_allow_the_trust_gate_holds_back_lists_no_allow_rules() -> None:
    policy = engine(
        "trust: {minimum_score: 70, below_minimum: deny}\npermissions: {allow: [x]}\n",
        "permissions: {allow: ['x*']}\n",
    )
    assert decide(policy, "x").also_matched == ("p1:allow:x*",)
    held = decide(policy, "x", who=agent(trust=60))
    assert (held.rule_id, held.also_matched) == ("trust-minimum", ())


@pytest.mark.parametrize(
    "first, second, merged",
    [
        ("grant: {max: 8h}", "grant: {max: 2h}", 7200.0),
        ("grant: {max: 2h}", "grant: {max: 8h}", 7200.0),
        ("grant: {max: 8h}", "severity: low", None),
        ("severity: low", "grant: {max: 8h}", None),
        ("severity: low", "severity: high", None),
    ],
)
def test_grants_merge_only_if_every_rule_allows_them_and_for_the_shortest(
    first: str, second: str, merged: float | None
) -> None:
    policy = escalations(
        f"{{action: pay, approvers: [a@x.io], {first}}}",
        f"{{action: 'pay*', approvers: [a@x.io], {second}}}",
    )
    decision = decide(policy, "pay")
    assert len(decision.also_matched) == 1
    assert decision.escalation is not None
    assert decision.escalation.grant_max_seconds == merged
