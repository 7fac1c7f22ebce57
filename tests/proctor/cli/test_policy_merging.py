"""`proctor policy explain` and `policy check` on the shipped policies, whose two files overlap."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run

SHIPPED = Path(__file__).parents[3] / "policies"


def test_explain_names_the_most_specific_rule_and_every_rule_merged(tmp_path: Path) -> None:
    explained = run(
        [
            "policy",
            "explain",
            "customer-service-agent",
            "refund_requests",
            "--role",
            "support",
            "--dir",
            str(SHIPPED),
        ],
        {},
        tmp_path,
    )
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert lines[0].startswith("ESCALATE by refunds-need-approval (customer-service.yaml): ")
    assert lines[1].startswith("  approvers alice@example.com, bob@example.com, quorum 1")
    assert lines[2] == (
        "  merged from refunds-need-approval (customer-service.yaml), "
        "customer-service-agent:escalate:refund_requests (customer-service-agent.yaml)"
    )


def test_check_warns_where_the_shipped_files_overlap(tmp_path: Path) -> None:
    checked = run(["policy", "check", str(SHIPPED)], {}, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert (
        "customer-service-agent.yaml:5: warning: permissions.escalate.0: overlaps "
        "refunds-need-approval (customer-service.yaml:13): where both apply, they merge to "
        "approvers alice@example.com, bob@example.com, quorum 1, timeout 86400s, on timeout deny"
    ) in checked.stderr.splitlines()
