from __future__ import annotations

from pathlib import Path

import pytest

from proctor.policy import PolicyEngine, PolicyError, load_policy_dir
from proctor.policy.testing import run_cases

SHIPPED = Path(__file__).parents[3] / "policies"


def test_shipped_policies_pass_their_own_tests() -> None:
    results = run_cases(PolicyEngine(load_policy_dir(SHIPPED)), SHIPPED)
    assert results, "the shipped policies carry test cases"
    assert [r.differences for r in results if not r.passed] == []


def test_a_wrong_expectation_is_reported_with_a_readable_diff(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("permissions: {allow: ['read:*'], deny: ['read:secrets']}\n")
    (tmp_path / "p.test.yaml").write_text(
        "tests:\n"
        "  - name: ok\n    agent: {id: a}\n    action: read:x\n    expect: {effect: allow}\n"
        "  - name: wrong\n    agent: {id: a}\n    action: read:secrets\n"
        "    expect: {effect: allow, rule: p:allow:read:*}\n"
    )
    results = run_cases(PolicyEngine(load_policy_dir(tmp_path)), tmp_path)
    assert [r.passed for r in results] == [True, False]
    assert results[1].line == 6
    assert results[1].differences[:2] == (
        "effect: expected allow, got deny",
        "rule: expected p:allow:read:*, got p:deny:read:secrets",
    )


def test_a_malformed_test_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("permissions: {allow: ['x']}\n")
    (tmp_path / "p.test.yaml").write_text(
        "tests:\n  - name: n\n    agent: {id: a}\n    action: x\n    expect: {effect: maybe}\n"
    )
    with pytest.raises(PolicyError) as caught:
        run_cases(PolicyEngine(load_policy_dir(tmp_path)), tmp_path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (
        "p.test.yaml",
        5,
        "tests.0.expect.effect",
    )


DELEGATION_POLICY = (
    "permissions:\n  allow: [pay]\n"
    "  deny: [{action: pay, id: too-deep, when: request.delegation.depth > 1}]\n"
    "  escalate:\n"
    "    - {action: pay, id: for-alice, approvers: [b@x.io],\n"
    '       when: request.delegation.root == "alice"}\n'
)


def test_a_case_may_act_on_someones_behalf(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(DELEGATION_POLICY)
    (tmp_path / "p.test.yaml").write_text(
        "tests:\n"
        "  - {name: itself, agent: {id: a}, action: pay, expect: {effect: allow}}\n"
        "  - name: for alice\n    agent: {id: a}\n    action: pay\n"
        "    delegation: {chain: [alice, 'agent:a']}\n"
        "    expect: {effect: escalate, rule: for-alice}\n"
        "  - name: two links\n    agent: {id: a}\n    action: pay\n"
        "    delegation: {chain: [bob, 'agent:planner', 'agent:a']}\n"
        "    expect: {effect: deny, rule: too-deep}\n"
    )
    results = run_cases(PolicyEngine(load_policy_dir(tmp_path)), tmp_path)
    assert [r.differences for r in results] == [(), (), ()]


def test_a_chain_that_does_not_end_with_the_requesting_agent_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(DELEGATION_POLICY)
    (tmp_path / "p.test.yaml").write_text(
        "tests:\n  - name: n\n    agent: {id: a}\n    action: pay\n"
        "    delegation: {chain: [alice, 'agent:b']}\n    expect: {effect: allow}\n"
    )
    with pytest.raises(PolicyError) as caught:
        run_cases(PolicyEngine(load_policy_dir(tmp_path)), tmp_path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("p.test.yaml", 2, "tests.0")
    assert "must end with the requesting agent, agent:a" in problem.message


def test_a_case_may_say_what_the_shadow_rules_would_decide(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "permissions:\n  allow: [refund]\n"
        "  deny: [{action: refund, id: trial, mode: shadow, when: params.amount > 100}]\n"
    )
    (tmp_path / "p.test.yaml").write_text(
        "tests:\n"
        "  - name: big\n    agent: {id: a}\n    action: refund\n    params: {amount: 500}\n"
        "    expect: {effect: allow}\n    shadow: {effect: deny, rule: trial}\n"
        "  - name: small\n    agent: {id: a}\n    action: refund\n    params: {amount: 5}\n"
        "    expect: {effect: allow}\n    shadow: {effect: allow}\n"
        "  - name: wrong\n    agent: {id: a}\n    action: refund\n    params: {amount: 5}\n"
        "    expect: {effect: allow}\n    shadow: {effect: deny, rule: trial}\n"
    )
    results = run_cases(PolicyEngine(load_policy_dir(tmp_path)), tmp_path)
    assert [r.differences[:2] for r in results] == [
        (),
        (),
        (
            "shadow effect: expected deny, got allow",
            "shadow rule: expected trial, got p:allow:refund",
        ),
    ]
