"""`policy check`'s warning about same-effect rules of two files that may both apply."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.policy.overlaps import globs_intersect, overlapping_rules
from tests.helpers.policies import engine


def warnings(*texts: str) -> list[str]:
    return [str(p) for p in overlapping_rules(engine(*texts).files)]


def test_overlapping_denies_are_reported_at_the_rule_not_reported() -> None:
    assert warnings(
        "permissions:\n  deny:\n    - {action: 'delete:*', id: no-deletes, reason: never}\n",
        "agent: a1\npermissions:\n  deny:\n    - 'delete:*'\n    - 'x'\n",
    ) == [
        "p1.yaml:4: permissions.deny.0: overlaps no-deletes (p.yaml:3): where both apply, "
        "no-deletes is reported"
    ]


def test_overlapping_escalations_say_what_they_merge_to() -> None:
    found = warnings(
        "permissions:\n  escalate:\n    - {action: pay, approvers: [a@x.io, b@x.io]}\n",
        "permissions:\n  escalate:\n    - {action: 'pay*', approvers: [b@x.io], quorum: 1}\n",
        "permissions:\n  escalate:\n    - {action: 'p*y', approvers: [c@x.io]}\n",
    )
    assert found == [
        "p1.yaml:3: permissions.escalate.0: overlaps p:escalate:pay (p.yaml:3): where both "
        "apply, they merge to approvers b@x.io, quorum 1, timeout 86400s, on timeout deny",
        "p2.yaml:3: permissions.escalate.0: overlaps p1:escalate:pay* (p1.yaml:3): where "
        "both apply, they name no approver in common and the request is denied",
        "p2.yaml:3: permissions.escalate.0: overlaps p:escalate:pay (p.yaml:3): where both "
        "apply, they name no approver in common and the request is denied",
    ]


def test_no_warning_for_other_effects_other_agents_or_patterns_that_never_meet() -> None:
    assert (
        warnings("agent: a\npermissions: {allow: ['x:*']}", "agent: b\npermissions: {allow: [x:y]}")
        == []
    )
    assert (
        warnings("role: r\npermissions: {allow: [x]}", "role: s\npermissions: {allow: [x]}") == []
    )
    assert warnings("permissions: {allow: ['x:*']}", "permissions: {deny: ['x:*']}") == []
    assert warnings("permissions: {allow: ['a*b']}", "permissions: {allow: ['b*a']}") == []
    assert warnings("permissions: {allow: ['x:*', 'x:y']}") == []  # one file: no merge news


def test_an_agent_list_and_a_role_may_meet() -> None:
    assert (
        len(
            warnings("agents: [a]\npermissions: {allow: [x]}", "role: r\npermissions: {allow: [x]}")
        )
        == 1
    )


def _brute(a: str, b: str) -> bool:
    """Some action of up to 6 characters over the patterns' alphabet matches both."""

    def regex(p: str) -> re.Pattern[str]:
        return re.compile(".*".join(map(re.escape, p.split("*"))))

    ra, rb = regex(a), regex(b)
    alphabet = sorted(set((a + b).replace("*", "")) | {"z"})
    for size in range(7):
        for letters in itertools.product(alphabet, repeat=size):
            action = "".join(letters)
            if ra.fullmatch(action) and rb.fullmatch(action):
                return True
    return False


globs = st.text(alphabet="ab*", min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(globs, globs)
def test_glob_intersection_agrees_with_trying_every_short_action(a: str, b: str) -> None:
    assert globs_intersect(a, b) is _brute(a, b)


def test_overlapping_escalations_say_whether_grants_survive_the_merge() -> None:
    rule = "permissions:\n  escalate:\n    - {action: %s, approvers: [a@x.io]%s}\n"
    both = warnings(rule % ("pay", ", grant: {max: 8h}"), rule % ("'pay*'", ", grant: {max: 2h}"))
    assert [w.split("on timeout deny")[1] for w in both] == [", grants: up to 2h"]
    one = warnings(rule % ("pay", ", grant: {max: 8h}"), rule % ("'pay*'", ""))
    assert [w.split("on timeout deny")[1] for w in one] == [
        ", no standing grants (not every rule allows them)"
    ]
    neither = warnings(rule % ("pay", ""), rule % ("'pay*'", ""))
    assert [w.split("on timeout deny")[1] for w in neither] == [""]


def test_shadow_rules_are_not_reported_as_overlaps() -> None:
    enforced = "agent: a1\npermissions: {deny: ['delete:*']}\n"
    shadow = "agent: a1\nmode: shadow\npermissions: {deny: ['delete:*']}\n"
    per_rule = "agent: a1\npermissions: {deny: [{action: 'delete:*', mode: shadow}]}\n"

    assert warnings(enforced, shadow) == []
    assert warnings(enforced, per_rule) == []
    assert len(warnings(enforced, enforced)) == 1
