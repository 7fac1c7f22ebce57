from __future__ import annotations

from pathlib import Path

import pytest

from proctor.policy import PolicyError, load_policy_dir
from proctor.policy.loader import parse_policy_text, read_yaml_mapping
from tests.helpers.cli import run

REPO_POLICIES = Path(__file__).parents[3] / "policies"


def problems(text: str) -> list[str]:
    """What reading and validating the file finds (compiling it is test_compile's)."""
    with pytest.raises(PolicyError) as caught:
        parse_policy_text(text.encode(), "p.yaml")
    return [str(p) for p in caught.value.problems]


def test_shipped_policies_load() -> None:
    policy_set = load_policy_dir(REPO_POLICIES)
    assert {f.name for f in policy_set.files} >= {"customer-service.yaml", "defaults.yaml"}
    assert len(policy_set.version) == 16


def test_errors_name_file_line_and_field() -> None:
    found = problems(
        "agent: a\npermissions:\n  allow:\n    - action: 'x[0]'\n"
        "  deny: [{action: y, colour: red}]\nextra: 1\n"
    )
    assert found == [
        "p.yaml:4: permissions.allow.0.action: Value error, 'x[0]' is not an action pattern: "
        "letters, digits, _ . : / - and the wildcard * only",
        "p.yaml:5: permissions.deny.0.colour: unknown field",
        "p.yaml:6: extra: unknown field",
    ]


def test_duplicate_keys_are_errors() -> None:
    assert problems("agent: a\nagent: b\n") == ["p.yaml:2: agent: duplicate key"]


def test_yaml_syntax_error_has_line() -> None:
    [problem] = problems("agent: a\npermissions: [\n")
    assert problem.startswith("p.yaml:3: yaml:")


def test_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        bomb += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1 if i > 1 else ''}"] * 10) + "]\n"
    assert "alias expansion" in problems(bomb)[0]


def test_only_one_target() -> None:
    [problem] = problems("agent: a\nrole: r\n")
    assert "give only one of agent, agents, role" in problem


def test_bad_duration() -> None:
    [problem] = problems(
        "permissions:\n  escalate:\n    - {action: a, approvers: [x], timeout: soon}\n"
    )
    assert "not a duration" in problem


def test_directory_collects_problems_from_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("bogus: 1\n")
    (tmp_path / "b.yml").write_text("agent: [\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_dir(tmp_path)
    assert [p.file for p in caught.value.problems] == ["a.yaml", "b.yml"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("permissions: {allow: [123]}\n", "permissions.allow.0"),
        ("permissions: {deny: ['read:(x|y)']}\n", "is not an action pattern"),
        ("permissions: {deny: ['read:.+']}\n", "is not an action pattern"),
        (
            "permissions:\n  escalate:\n    - action: a\n"
            "      approvers: [x@y.io]\n      ladder:\n"
            "        - {after: 2h, approvers: [b@y.io]}\n"
            "        - {after: 1h, approvers: [c@y.io]}\n",
            "increasing `after` order",
        ),
    ],
)
def test_bad_input_is_a_clear_error(text: str, words: str) -> None:
    assert any(words in p for p in problems(text)), problems(text)


DEEP_LISTS = "agent: a\npermissions: {allow: " + "[" * 10_000 + "]" * 10_000 + "}\n"
DEEP_MAPS = "agent: a\nx: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n"
DEEP_BLOCKS = "agent: a\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 200))


@pytest.mark.parametrize(
    "text, expected",
    [
        (DEEP_LISTS, "p.yaml:2: yaml: nested deeper than 64 levels: refused"),
        (DEEP_MAPS, "p.yaml:2: yaml: nested deeper than 64 levels: refused"),
        (DEEP_BLOCKS, "p.yaml:66: yaml: nested deeper than 64 levels: refused"),
        # Aliases nest without nesting in the text, down to a node that holds itself.
        ("a: &a [*a]\n", "p.yaml:1: yaml: nested deeper than 64 levels (through aliases): refused"),
        (
            "base: &b {agent: a}\n<<: *b\n",
            "p.yaml:2: <<: merge keys (<<) are not supported: write the fields out (an alias of a "
            "whole value, *name, works)",
        ),
        (
            "permissions:\n  allow:\n    - &r {action: a}\n    - <<: *r\n      note: b\n",
            "p.yaml:4: permissions.allow.1.<<: merge keys (<<) are not supported: write the fields "
            "out (an alias of a whole value, *name, works)",
        ),
        ("agent: !foo bar\n", "p.yaml:1: agent: unsupported tag '!foo'"),
        (
            "agent: !!python/object:os.system x\n",
            "p.yaml:1: agent: unsupported tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
        ("!foo k: v\n", "p.yaml:1: file: unsupported tag '!foo'"),
        ("agent: a\nx: !foo {a: 1}\n", "p.yaml:2: x: unsupported tag '!foo'"),
        (
            "agent: 2001-13-45\n",
            "p.yaml:1: agent: cannot read '2001-13-45': month must be in 1..12",
        ),
        ("2001-13-45: x\n", "p.yaml:1: file: cannot read '2001-13-45': month must be in 1..12"),
        (
            "agent: !!int abc\n",
            "p.yaml:1: agent: cannot read 'abc': invalid literal for int() with base 10: 'abc'",
        ),
        (
            "agent: !!float abc\n",
            "p.yaml:1: agent: cannot read 'abc': could not convert string to float: 'abc'",
        ),
        ("? {a: 1}\n: v\n", "p.yaml:1: file: a key must be plain text, not a mapping or a list"),
    ],
)
def test_hostile_yaml_is_a_located_error_not_a_traceback(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_nesting_up_to_the_limit_is_fine() -> None:
    deep = "agent: a\nx: " + "[" * 63 + "]" * 63 + "\n"
    data, _ = read_yaml_mapping(deep.encode(), "p.yaml")
    assert data["agent"] == "a"


def test_policy_check_reports_hostile_yaml_as_file_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text(DEEP_LISTS)
    (tmp_path / "merge.yaml").write_text("base: &b {agent: a}\n<<: *b\n")
    done = run(["policy", "check", str(tmp_path)], {}, tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "deep.yaml:2: error: yaml: nested deeper than 64 levels: refused",
        "merge.yaml:2: error: <<: merge keys (<<) are not supported: write the fields out (an "
        "alias of a whole value, *name, works)",
    ]


@pytest.mark.parametrize("value", ["[" * 10_000, "!foo x", "2001-13-45", "{a: [1, }"])
def test_policy_explain_refuses_a_hostile_param_in_one_line(tmp_path: Path, value: str) -> None:
    done = run(
        [
            "policy",
            "explain",
            "agent-x",
            "read:file",
            "--dir",
            str(REPO_POLICIES),
            "--param",
            f"path={value}",
        ],
        {},
        tmp_path,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--param" in done.stderr and "path=" in done.stderr
