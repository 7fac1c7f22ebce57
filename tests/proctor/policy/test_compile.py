from __future__ import annotations

from pathlib import Path

import pytest

from proctor.policy import PolicyEngine, load_policy_dir
from proctor.policy.compile import compile_policy_set
from tests.helpers.policies import agent, decide, engine, policy_set, problems

TOOLKIT = Path(__file__).parent / "toolkit_format"


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


def test_defaults_files_fill_what_a_targeted_file_leaves_out() -> None:
    policy = engine(
        "escalation: {approvers: [lead@x.io], quorum: 2, timeout: 1h, deny_vetoes: false}\n",
        "agent: a1\nescalation: {timeout: 3h}\npermissions: {escalate: [refund]}\n",
        "escalation: {direct_messages: false}\n",
    )
    settings = decide(policy, "refund").escalation
    assert settings is not None
    assert (settings.approvers, settings.quorum, settings.timeout_seconds) == (
        ("lead@x.io",),
        2,
        3 * 3600,
    )
    assert (settings.deny_vetoes, settings.direct_messages, settings.owner_may_approve) == (
        False,
        False,
        False,
    )


def test_defaults_files_that_set_one_field_differently_are_refused_whatever_their_names() -> None:
    lead = "escalation: {approvers: [lead@x.io], quorum: 2, timeout: 1h}\n"
    other = "escalation: {approvers: [other@x.io], quorum: 2, timeout: 2h}\n"
    assert problems(lead, other) == [
        "p1.yaml:1: escalation.approvers: set differently in p.yaml, which also applies to "
        "every agent: set it in one of them",
        "p1.yaml:1: escalation.timeout: set differently in p.yaml, which also applies to "
        "every agent: set it in one of them",
    ]
    assert len(problems(other, lead)) == 2


def test_groups_expand_wherever_approvers_are_named() -> None:
    policy = engine(
        "groups: {leads: [a@x.io, b@x.io], execs: [c@x.io]}\n",
        "agent: a1\npermissions:\n  escalate:\n    - action: refund\n"
        "      approvers: [b@x.io, 'group:leads']\n"
        "      ladder: [{after: 1h, approvers: ['group:execs', 'role:cfo']}]\n",
    )
    settings = decide(policy, "refund").escalation
    assert settings is not None
    assert settings.approvers == ("b@x.io", "a@x.io")
    assert [(t.after_seconds, t.approvers) for t in settings.ladder] == [
        (3600, ("c@x.io", "role:cfo"))
    ]


def test_a_group_two_files_define_differently_is_an_error() -> None:
    assert problems("groups: {g: [a@x.io]}\n", "groups: {g: [b@x.io]}\n") == [
        "p1.yaml:1: groups.g: group defined differently in another file"
    ]
    engine("groups: {g: [a@x.io]}\n", "groups: {g: [a@x.io]}\n")


def test_escalate_without_approvers_asks_the_default_approvers() -> None:
    [rule] = engine("permissions:\n  escalate:\n    - refund\n").files[0].rules
    assert rule.escalation is not None and rule.escalation.approvers == ()
    assert any(
        "names nobody" in p
        for p in problems("permissions: {escalate: [{action: r, approvers: []}]}\n")
    )


def test_approvers_on_allow_rule_is_an_error() -> None:
    [problem] = problems("permissions:\n  allow:\n    - {action: a, approvers: [x]}\n")
    assert "belong to escalate rules" in problem


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "groups: {leads: [a@x.io]}\npermissions:\n  escalate:\n"
            "    - {action: a, approvers: ['group:nobody']}\n",
            "unknown approver group 'group:nobody'",
        ),
        (
            "permissions:\n  escalate:\n"
            "    - {action: a, approvers: [x@y.io], on_timeout: escalate}\n",
            "on_timeout: escalate needs a ladder",
        ),
        ("permissions: {allow: [{action: a, severity: high}]}\n", "belong to escalate rules"),
    ],
)
def test_rules_that_cannot_work_are_clear_errors(text: str, words: str) -> None:
    assert any(words in p for p in problems(text)), problems(text)


def test_every_problem_in_the_set_is_reported_at_its_line_in_order() -> None:
    assert problems(
        "permissions:\n  escalate:\n    - refund\n"
        "    - {action: a, approvers: ['group:nobody']}\n"
        "  allow:\n    - {action: c, approvers: [x@y.io]}\n"
        "    - action: e\n      when: x > 1\n      unless: 1 + 'a' == 2\n",
        "permissions: {escalate: [{action: b, approvers: [x@y.io], on_timeout: escalate}]}\n",
    ) == [
        "p.yaml:4: permissions.escalate.1: unknown approver group 'group:nobody' (define it "
        "under groups:)",
        "p.yaml:6: permissions.allow.0: escalation settings (approvers) belong to escalate rules",
        "p.yaml:8: permissions.allow.1.when: expression:1:1: undeclared reference to 'x' (in "
        "container '')",
        "p.yaml:9: permissions.allow.1.unless: expression:1:3: found no matching overload for "
        "'_+_' applied to '(int, string)'",
        "p1.yaml:1: permissions.escalate.0: on_timeout: escalate needs a ladder to escalate to",
    ]


def test_rule_ids_and_reasons_default_to_file_effect_and_pattern() -> None:
    compiled = compile_policy_set(policy_set("permissions: {allow: ['read:*'], deny: [x]}\n"))
    assert [(r.rule_id, r.reason, r.order) for r in compiled.files[0].rules] == [
        ("p:deny:x", "deny x (p.yaml)", (0, 0)),
        ("p:allow:read:*", "allow read:* (p.yaml)", (0, 0)),
    ]


def test_rate_limits_are_read_from_their_names() -> None:
    compiled = compile_policy_set(
        policy_set(
            "rate_limits: {actions_per_minute: 100, escalations_per_hour: 5, "
            "credits_per_day: 3, comments_per_review: 3}\n"
        )
    )
    limits = {limit.name: limit for limit in compiled.files[0].rate_limits}
    assert sorted(limits) == ["actions_per_minute", "credits_per_day", "escalations_per_hour"]
    assert (limits["actions_per_minute"].counts, limits["actions_per_minute"].window_seconds) == (
        "actions",
        60,
    )
    assert limits["escalations_per_hour"].counts == "escalations"
    credits = limits["credits_per_day"]
    assert (credits.counts, credits.match, credits.window_seconds, credits.policy_file) == (
        "matching",
        "credit",
        86400,
        "p.yaml",
    )


def test_untimed_rate_limit_is_a_note_not_an_error() -> None:
    policy = engine("permissions: {allow: [x]}\nrate_limits: {comments_per_review: 3}\n")
    assert [str(n) for n in policy.notes] == [
        "p.yaml:2: rate_limits.comments_per_review: not enforced: 'review' is not a time unit "
        "(second, minute, hour, day, week)"
    ]


def test_every_toolkit_field_takes_effect() -> None:
    policy = PolicyEngine(load_policy_dir(TOOLKIT))
    assert [str(n) for n in policy.notes] == []
    rules = policy.audit_rules
    assert rules.retention_days == 3650 and {"iban", "card_number"} <= rules.sensitive_fields
    limits = {limit.name: limit for limit in policy.files[0].rate_limits}
    assert limits["credits_per_day"].match == "credit"
    assert limits["actions_per_minute"].window_seconds == 60


def grant_max(text: str, action: str = "pay") -> float | None:
    escalation = decide(engine(text), action).escalation
    assert escalation is not None
    return escalation.grant_max_seconds


def test_no_standing_grants_unless_the_rule_or_its_defaults_allow_them() -> None:
    rule = "permissions: {escalate: [{action: pay, approvers: [a@x.io]%s}]}\n"
    assert grant_max(rule % "") is None
    assert grant_max(rule % ", grant: {max: 8h}") == 8 * 3600
    assert grant_max(rule % ", grant: {max: 90}") == 90
    assert grant_max("escalation: {grant: {max: 2d}}\n" + rule % "") == 2 * 86400
    assert grant_max("escalation: {grant: {max: 2d}}\n" + rule % ", grant: {max: 1h}") == 3600


def test_a_defaults_files_grant_reaches_every_files_escalate_rules() -> None:
    policy = engine(
        "agent: a1\npermissions: {escalate: [{action: pay, approvers: [a@x.io]}]}\n",
        "escalation: {grant: {max: 4h}}\n",
    )
    escalation = decide(policy, "pay").escalation
    assert escalation is not None and escalation.grant_max_seconds == 4 * 3600


def test_the_trust_gate_makes_no_standing_grants() -> None:
    policy = engine(
        "escalation: {approvers: [a@x.io], grant: {max: 8h}}\ntrust: {minimum_score: 70}\n"
        "permissions: {allow: [pay]}\n"
    )
    held = decide(policy, "pay", who=agent(trust=10))
    assert held.rule_id == "trust-minimum" and held.escalation is not None
    assert held.escalation.grant_max_seconds is None


@pytest.mark.parametrize(
    "grant, message",
    [
        (
            "{max: 31d}",
            "p.yaml:3: permissions.escalate.0.grant.max: Value error, a standing "
            "grant lasts at most 30d (31d given)",
        ),
        (
            "{max: 0s}",
            "p.yaml:3: permissions.escalate.0.grant.max: Value error, a duration must be positive",
        ),
        (
            "{max: soon}",
            "p.yaml:3: permissions.escalate.0.grant.max: Value error, 'soon' is "
            "not a duration (use e.g. 90s, 15m, 24h, 7d)",
        ),
        ("{max: 8h, uses: 3}", "p.yaml:3: permissions.escalate.0.grant.uses: unknown field"),
        ("{}", "p.yaml:3: permissions.escalate.0.grant.max: Field required"),
    ],
)
def test_a_grant_that_cannot_be_is_an_error_at_its_line(grant: str, message: str) -> None:
    text = (
        f"permissions:\n  escalate:\n    - {{action: pay, approvers: [a@x.io], grant: {grant}}}\n"
    )
    assert problems(text) == [message]


def test_thirty_days_is_the_longest_grant_a_rule_may_allow() -> None:
    rule = "permissions: {escalate: [{action: pay, approvers: [a@x.io], grant: {max: %s}}]}\n"
    assert grant_max(rule % "30d") == 30 * 86400
    assert problems(rule % "720.5h")


@pytest.mark.parametrize("effect", ["allow", "deny"])
def test_a_grant_on_an_allow_or_deny_rule_is_an_error(effect: str) -> None:
    assert problems(f"permissions:\n  {effect}:\n    - {{action: pay, grant: {{max: 1h}}}}\n") == [
        f"p.yaml:3: permissions.{effect}.0: escalation settings (grant) belong to escalate rules"
    ]
