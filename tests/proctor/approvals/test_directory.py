"""The approver directory: roles, Slack ids, emails, and file:line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.approvals.directory import ApproverDirectory, ReloadingDirectory
from proctor.policy.loader import PolicyError

GOOD = """\
approvers:
  alice@example.com: {slack: U0ALICE, roles: [finance-manager]}
  bob@example.com: {roles: [finance-manager, support-lead]}
  ops-oncall: {email: oncall@example.com}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "approvers.yaml"
    path.write_text(text)
    return path


def test_roles_ids_and_emails(tmp_path: Path) -> None:
    directory = ApproverDirectory.load(write(tmp_path, GOOD))
    assert directory.members_of("finance-manager") == ("alice@example.com", "bob@example.com")
    assert directory.resolve_roles(
        ["role:support-lead", "carol@example.com", "role:finance-manager", "role:nobody"]
    ) == (("bob@example.com", "carol@example.com", "alice@example.com"), ("role:nobody",))
    assert directory.slack_user_of("alice@example.com") == "U0ALICE"
    assert directory.identity_of_slack_user("U0ALICE") == "alice@example.com"
    assert directory.email_of("ops-oncall") == "oncall@example.com"
    assert directory.email_of("carol@example.com") == "carol@example.com"
    assert directory.identity_of_email("ONCALL@example.com") == "ops-oncall"
    assert directory.identity_of_email("zed@example.com") == "zed@example.com"


def test_no_file_is_an_empty_directory(tmp_path: Path) -> None:
    assert ApproverDirectory.load(tmp_path / "missing.yaml").entries == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "approvers:\n  alice@example.com: {slack: alice}\n",
            "approvers.yaml:2: approvers.alice@example.com.slack",
        ),
        (
            "approvers:\n  alice@example.com: {rolez: [x]}\n",
            "approvers.alice@example.com.rolez: unknown field",
        ),
        (
            "approvers:\n  a@x.io: {slack: U1A}\n  b@x.io: {slack: U1A}\n",
            "approvers.b@x.io.slack: Slack user U1A is also a@x.io",
        ),
        ("approvers:\n  role:x: {}\n", "approvers"),
        ("approvers:\n  a@x.io: {}\n  a@x.io: {}\n", "duplicate key"),
    ],
)
def test_bad_files_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as raised:
        ApproverDirectory.load(write(tmp_path, text))
    assert expected in str(raised.value)


def test_a_broken_edit_keeps_the_last_good_directory(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    reloading = ReloadingDirectory(path)
    assert reloading.current().slack_user_of("alice@example.com") == "U0ALICE"
    path.write_text("approvers: [not, a, mapping]\n")
    assert reloading.current().slack_user_of("alice@example.com") == "U0ALICE"
    path.write_text("approvers:\n  alice@example.com: {slack: U0NEW}\n")
    assert reloading.current().slack_user_of("alice@example.com") == "U0NEW"


def test_a_removed_file_leaves_an_empty_directory_and_a_new_one_counts(tmp_path: Path) -> None:
    """No file is a valid directory (identities are emails), so removing it is a change that
    loads; writing it back is another."""
    path = write(tmp_path, GOOD)
    reloading = ReloadingDirectory(path)
    path.unlink()
    assert reloading.current().entries == {}
    assert reloading.current().email_of("ops-oncall") is None
    write(tmp_path, GOOD)
    assert reloading.current().email_of("ops-oncall") == "oncall@example.com"
