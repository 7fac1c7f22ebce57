"""`proctor policy check`: errors refuse the set (exit 1), warnings don't (exit 1 with --strict);
each finding is one `file:line: error|warning: field: message` line."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run

TOOLKIT_FILE = Path(__file__).parents[3] / "policies" / "customer-service-agent.yaml"
NOBODY = (
    "no approvers, and the default approvers ({source}) are nobody: such requests can only "
    "time out, and are then denied"
)


def check(tmp_path: Path, *flags: str, **env: str) -> tuple[int, list[str], str]:
    done = run(["policy", "check", *flags, str(tmp_path / "policies")], env, tmp_path)
    return done.returncode, done.stderr.splitlines(), done.stdout


def policies(tmp_path: Path, **files: str) -> None:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)


def test_errors_exit_1_with_their_level(tmp_path: Path) -> None:
    policies(tmp_path, p="agent: a\npermissions:\n  allow: [{action: x, colour: red}]\n")
    code, lines, stdout = check(tmp_path)
    assert (code, lines, stdout) == (
        1,
        ["p.yaml:3: error: permissions.allow.0.colour: unknown field"],
        "",
    )


def test_warnings_load_and_exit_0_unless_strict(tmp_path: Path) -> None:
    policies(
        tmp_path,
        p="agent: a\npermissions:\n  allow: [read:secrets]\n  deny: ['read:*']\n"
        "  escalate: [{action: x, approvers: ['role:cfo']}]\n"
        "rate_limits: {calls_per_fortnight: 3}\n",
    )
    code, lines, stdout = check(tmp_path)
    assert code == 0
    assert lines == [
        "p.yaml:3: warning: permissions.allow.0: unreachable: 'read:secrets' is always denied "
        "by p:deny:read:* (p.yaml)",
        "p.yaml:5: warning: permissions.escalate.0.approvers: no approver in the directory "
        "holds 'role:cfo' (see PROCTOR_APPROVERS_FILE)",
        "p.yaml:6: warning: rate_limits.calls_per_fortnight: not enforced: 'fortnight' is not a "
        "time unit (second, minute, hour, day, week)",
    ]
    assert stdout.endswith(": OK (3 warnings)\n")
    strict_code, strict_lines, strict_stdout = check(tmp_path, "--strict")
    assert (strict_code, strict_lines, strict_stdout) == (1, lines, "")


def test_the_toolkit_file_warns_only_while_nobody_can_approve(tmp_path: Path) -> None:
    policies(tmp_path)
    (tmp_path / "policies" / "customer-service-agent.yaml").write_bytes(TOOLKIT_FILE.read_bytes())
    code, lines, _ = check(tmp_path, "--strict")
    source = "the directory's holders of role 'approver'"
    assert code == 1
    assert lines == [
        f"customer-service-agent.yaml:5: warning: permissions.escalate.{i}: "
        + NOBODY.format(source=source)
        for i in (0, 1)
    ]
    assert check(tmp_path, "--strict", PROCTOR_DEFAULT_APPROVERS="ann@example.com")[:2] == (0, [])
    (tmp_path / "approvers.yaml").write_text("approvers:\n  bo@example.com: {roles: [lead]}\n")
    assert check(tmp_path, "--strict", PROCTOR_DEFAULT_APPROVER_ROLE="lead")[:2] == (0, [])
    code, lines, _ = check(tmp_path, PROCTOR_DEFAULT_APPROVER_ROLE="")
    assert code == 0
    assert lines[0].endswith(NOBODY.format(source="none configured"))


def test_a_malformed_default_approvers_setting_is_one_line(tmp_path: Path) -> None:
    policies(tmp_path, p="agent: a\n")
    done = run(
        ["policy", "check", str(tmp_path / "policies")],
        {"PROCTOR_DEFAULT_APPROVERS": "ann@x.io,group:leads"},
        tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: PROCTOR_DEFAULT_APPROVERS: 'group:leads': groups")
    assert done.stderr.count("\n") == 1
