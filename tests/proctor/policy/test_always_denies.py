"""`PolicyEngine.always_denies`: what the MCP gateway may leave out of `tools/list`. True only
when no request for the action could be anything but denied; a tool wrongly hidden is a tool
the agent can never ask for, so every doubt (a condition, an escalation) answers False."""

from __future__ import annotations

from pathlib import Path

from proctor.policy import PolicyEngine, load_policy_dir
from tests.helpers.policies import agent


def engine_of(tmp_path: Path, **files: str) -> PolicyEngine:
    """The engine of a real policy directory holding `files` (name without `.yaml`: text)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return PolicyEngine(load_policy_dir(directory))


def test_an_unconditional_deny_always_denies_even_over_an_allow(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path,
        base="permissions:\n  allow: ['mcp:*']\n  deny: ['mcp:files:wipe']\n",
    )
    assert policy.always_denies(agent(), "mcp:files:wipe")
    assert not policy.always_denies(agent(), "mcp:files:read")


def test_a_conditional_deny_does_not_when_an_allow_also_matches(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path,
        base=(
            "permissions:\n"
            "  allow: ['mcp:files:*']\n"
            "  deny:\n"
            "    - {action: 'mcp:files:write', when: 'params.size > 100'}\n"
            "    - {action: 'mcp:files:move', unless: 'params.dry_run'}\n"
        ),
    )
    assert not policy.always_denies(agent(), "mcp:files:write")
    assert not policy.always_denies(agent(), "mcp:files:move")


def test_a_conditional_deny_with_nothing_else_matching_is_the_default_deny(
    tmp_path: Path,
) -> None:
    policy = engine_of(
        tmp_path, base="permissions:\n  deny: [{action: 'mcp:files:write', when: 'params.n > 1'}]\n"
    )
    assert policy.always_denies(agent(), "mcp:files:write")


def test_no_rule_at_all_is_the_default_deny(tmp_path: Path) -> None:
    policy = engine_of(tmp_path, base="permissions:\n  allow: ['mcp:files:read']\n")
    assert policy.always_denies(agent(), "mcp:files:write")
    assert policy.always_denies(agent(), "mcp:crm:read")


def test_an_allow_or_an_escalate_that_matches_does_not_deny(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path,
        base=(
            "escalation: {approvers: [alice@example.com]}\n"
            "permissions:\n"
            "  allow: ['mcp:files:read']\n"
            "  escalate: ['mcp:billing:*']\n"
        ),
    )
    assert not policy.always_denies(agent(), "mcp:files:read")
    assert not policy.always_denies(agent(), "mcp:billing:refund")


def test_an_allow_with_a_condition_still_could_allow(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path, base="permissions:\n  allow: [{action: 'mcp:files:read', when: 'params.n < 5'}]\n"
    )
    assert not policy.always_denies(agent(), "mcp:files:read")


def test_rules_of_a_file_scoped_to_another_role_or_agent_do_not_count(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path,
        finance="role: finance\npermissions:\n  allow: ['mcp:billing:*']\n",
        ops="role: ops\npermissions:\n  deny: ['mcp:files:*']\n",
        other="agent: someone-else\npermissions:\n  allow: ['mcp:files:*']\n",
        support="role: support\npermissions:\n  allow: ['mcp:files:*']\n",
    )
    support, finance, ops = agent(role="support"), agent(role="finance"), agent(role="ops")
    assert policy.always_denies(support, "mcp:billing:refund")
    assert not policy.always_denies(finance, "mcp:billing:refund")
    assert not policy.always_denies(support, "mcp:files:read")
    assert policy.always_denies(ops, "mcp:files:read")
    assert policy.always_denies(finance, "mcp:files:read")
    assert not policy.always_denies(agent("someone-else", role="finance"), "mcp:files:read")


def test_a_glob_deny_denies_every_tool_it_covers(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path,
        mcp=(
            "permissions:\n"
            "  allow: ['mcp:*']\n"
            "  deny: [{action: 'mcp:*:delete_*', id: no-deletes}]\n"
        ),
    )
    assert policy.always_denies(agent(), "mcp:files:delete_customer")
    assert policy.always_denies(agent(), "mcp:crm:delete_")
    assert not policy.always_denies(agent(), "mcp:files:undelete_customer")
    assert not policy.always_denies(agent(), "mcp:files:list_deleted")


def test_a_shadow_deny_is_not_enforced_so_it_hides_nothing(tmp_path: Path) -> None:
    policy = engine_of(
        tmp_path,
        base="permissions:\n  allow: ['mcp:files:*']\n",
        trial="mode: shadow\npermissions:\n  deny: ['mcp:files:wipe']\n",
    )
    assert not policy.always_denies(agent(), "mcp:files:wipe")
