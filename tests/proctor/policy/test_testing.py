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
