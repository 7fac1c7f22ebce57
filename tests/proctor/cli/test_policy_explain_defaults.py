"""`proctor policy explain` names who the default approvers are now for a rule that leaves
approvers to them (the worker resolves them again when it decides)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run

TOOLKIT_FILE = Path(__file__).parents[3] / "policies" / "customer-service-agent.yaml"


def explain_refund(tmp_path: Path, **env: str) -> str:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "customer-service-agent.yaml").write_bytes(TOOLKIT_FILE.read_bytes())
    args = ["policy", "explain", "customer-service-agent", "refund_requests", "--dir"]
    done = run([*args, str(policies)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[1]


def test_explain_names_the_default_approvers_or_nobody(tmp_path: Path) -> None:
    role = "the directory's holders of role 'approver'"
    assert explain_refund(tmp_path) == (
        f"  approvers nobody (the default approvers: {role}; it can only time out), quorum 1, "
        "timeout 86400s, on timeout deny"
    )
    (tmp_path / "approvers.yaml").write_text(
        "approvers:\n  zed@example.com: {roles: [approver]}\n  amy@example.com: {roles: [cfo]}\n"
    )
    assert explain_refund(tmp_path, PROCTOR_DEFAULT_APPROVERS="amy@example.com").startswith(
        "  approvers amy@example.com, zed@example.com (the default approvers: "
        f"PROCTOR_DEFAULT_APPROVERS (amy@example.com) and {role}), quorum 1"
    )
