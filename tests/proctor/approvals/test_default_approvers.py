"""The default approvers: parsed from the settings, resolved against the approver directory."""

from __future__ import annotations

import pytest

from proctor.approvals.defaults import DefaultApprovers
from proctor.approvals.directory import ApproverDirectory, DirectoryEntry
from proctor.settings import NotConfigured, ProctorSettings

DIRECTORY = ApproverDirectory(
    {
        "zoe@example.com": DirectoryEntry(roles=("approver",)),
        "cfo@example.com": DirectoryEntry(roles=("cfo",)),
        "amy@example.com": DirectoryEntry(roles=("approver", "cfo")),
    }
)


def settings(names: str | None = None, role: str | None = "approver") -> ProctorSettings:
    return ProctorSettings(default_approvers=names, default_approver_role=role)


def test_by_default_the_directorys_approvers_in_its_order() -> None:
    defaults = DefaultApprovers.from_settings(ProctorSettings())
    assert defaults == DefaultApprovers((), "approver")
    assert defaults.resolve(DIRECTORY) == ("zoe@example.com", "amy@example.com")
    assert defaults.resolve(ApproverDirectory()) == ()


def test_named_approvers_come_first_then_the_role_each_once() -> None:
    defaults = DefaultApprovers.from_settings(
        settings(" ops@example.com, amy@example.com ,role:cfo,,")
    )
    assert defaults.names == ("ops@example.com", "amy@example.com", "role:cfo")
    assert defaults.resolve(DIRECTORY) == (
        "ops@example.com",
        "amy@example.com",
        "cfo@example.com",
        "zoe@example.com",
    )
    assert defaults.describe() == (
        "PROCTOR_DEFAULT_APPROVERS (ops@example.com, amy@example.com, role:cfo) and the "
        "directory's holders of role 'approver'"
    )


def test_an_empty_role_turns_the_role_off() -> None:
    defaults = DefaultApprovers.from_settings(settings(role=" "))
    assert defaults.role is None
    assert defaults.resolve(DIRECTORY) == ()
    assert defaults.describe() == "none configured"


@pytest.mark.parametrize(
    "names, role, words",
    [
        ("ann@x.io, group:leads", "approver", "PROCTOR_DEFAULT_APPROVERS: 'group:leads': groups"),
        ("bad:thing", "approver", "PROCTOR_DEFAULT_APPROVERS: 'bad:thing': approver references"),
        (None, "role:approver", "PROCTOR_DEFAULT_APPROVER_ROLE: 'role:approver' is not a role"),
        (None, "two words", "PROCTOR_DEFAULT_APPROVER_ROLE: 'two words' is not a role name"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(
    names: str | None, role: str, words: str
) -> None:
    with pytest.raises(NotConfigured) as caught:
        DefaultApprovers.from_settings(settings(names, role))
    assert str(caught.value).startswith(words)
