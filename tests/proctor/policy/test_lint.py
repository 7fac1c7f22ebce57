from __future__ import annotations

from proctor.policy.lint import unknown_roles
from tests.helpers.policies import engine


def test_a_rule_an_unconditional_deny_always_beats_is_unreachable() -> None:
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


def test_a_deny_for_everyone_shadows_a_targeted_files_rule() -> None:
    shadowed = engine(
        "permissions: {deny: ['delete:*']}\n", "agent: a1\npermissions: {allow: ['delete:x']}\n"
    )
    assert [str(f) for f in shadowed.findings] == [
        "p1.yaml:2: permissions.allow.0: unreachable: 'delete:x' is always denied by "
        "p:deny:delete:* (p.yaml)"
    ]


def test_denies_that_may_not_apply_shadow_nothing() -> None:
    assert not engine(
        "permissions:\n  allow: ['read:*', pay, 'write:*']\n"
        "  deny: ['read:secrets', {action: pay, when: params.n > 3}, {action: 'write:*', "
        "unless: agent.trust > 90}]\n",
        "agent: a1\npermissions: {deny: ['*']}\n",
        "agent: a2\npermissions: {allow: ['read:*']}\n",
        "permissions: {deny: ['a*b']}\n",
        "agent: a3\npermissions: {allow: ['a*']}\n",
    ).findings


def test_unknown_roles_name_the_rule_and_each_role_once() -> None:
    policy = engine(
        "agent: a\npermissions:\n  escalate:\n"
        "    - action: x\n      approvers: ['role:cfo', 'role:finance', 'role:cfo', b@x.io]\n"
        "      ladder: [{after: 1h, approvers: ['role:board', 'role:cfo']}]\n"
        "    - {action: y, approvers: ['role:finance']}\n"
    )
    assert [str(p) for p in unknown_roles(policy.files, frozenset({"finance"}))] == [
        "p.yaml:4: permissions.escalate.0.approvers: no approver in the directory holds "
        "'role:cfo' (see PROCTOR_APPROVERS_FILE)",
        "p.yaml:4: permissions.escalate.0.approvers: no approver in the directory holds "
        "'role:board' (see PROCTOR_APPROVERS_FILE)",
    ]
    assert unknown_roles(policy.files, frozenset({"finance", "cfo", "board"})) == []


def test_a_grant_on_a_shadow_escalation_is_a_warning_where_it_is_written() -> None:
    policy = engine(
        "permissions:\n  escalate:\n"
        "    - {action: pay, approvers: [a@x.io], grant: {max: 8h}, mode: shadow}\n"
        "    - {action: wire, approvers: [a@x.io], grant: {max: 8h}}\n",
        "mode: shadow\nescalation:\n  approvers: [a@x.io]\n  grant: {max: 1h}\n"
        "permissions: {escalate: [refund]}\n",
    )
    assert [str(f) for f in policy.findings] == [
        "p.yaml:3: permissions.escalate.0.grant: a shadow escalation asks nobody, so it makes "
        "no standing grant: grant has no effect",
        "p1.yaml:4: escalation.grant: a shadow escalation asks nobody, so it makes no standing "
        "grant: grant has no effect",
    ]
