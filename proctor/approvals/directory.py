"""The approver directory: approver identities, their roles, and how to reach them on Slack.

Policies name approvers by identity (an email, usually), `role:<name>` (every approver holding
that role here) or `slack-group:<handle>`. The approvals app maps a Slack user back to an
identity with this file first, then by the email on the user's Slack profile.

```yaml
approvers:
  alice@example.com: {slack: U0ALICE, roles: [finance-manager]}
  bob@example.com: {roles: [finance-manager, support-lead]}
  ops-oncall: {email: oncall@example.com}
```
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proctor.policy.loader import PolicyError, PolicyProblem, read_yaml_mapping, validate_model
from proctor.policy.schema import check_approver_name
from proctor.reloading import Reloading

SLACK_USER_ID = r"^[UW][A-Z0-9]{2,30}$"


class DirectoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slack: str | None = Field(default=None, pattern=SLACK_USER_ID)
    """The approver's Slack user id (else found by email)."""
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    """Defaults to the identity when the identity is an email."""
    roles: tuple[str, ...] = ()

    @field_validator("roles")
    @classmethod
    def _role_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for role in value:
            if not role or ":" in role or any(c.isspace() for c in role):
                raise ValueError(f"{role!r} is not a role name")
        return value


class DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: dict[str, DirectoryEntry] = Field(default_factory=dict)

    @field_validator("approvers")
    @classmethod
    def _identities(cls, value: dict[str, DirectoryEntry]) -> dict[str, DirectoryEntry]:
        for identity in value:
            check_approver_name(identity)
            if ":" in identity:
                raise ValueError(f"{identity!r}: an identity can't contain ':'")
        return value


@dataclass(frozen=True)
class ApproverDirectory:
    entries: dict[str, DirectoryEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ApproverDirectory:
        """The directory in `path`; none there is an empty directory (identities are emails).
        A malformed file raises PolicyError with file:line: field."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise PolicyError([PolicyProblem(str(path), 0, "file", str(exc))]) from exc
        data, lines = read_yaml_mapping(raw, str(path))
        parsed = validate_model(DirectoryFile, data, str(path), lines)
        directory = cls(dict(parsed.approvers))
        clashes = directory._slack_clashes()
        if clashes:
            raise PolicyError(
                [
                    PolicyProblem(
                        str(path),
                        lines.get(("approvers", who), 1),
                        f"approvers.{who}.slack",
                        message,
                    )
                    for who, message in clashes
                ]
            )
        return directory

    def _slack_clashes(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        clashes = []
        for identity, entry in self.entries.items():
            if entry.slack is None:
                continue
            if entry.slack in seen:
                clashes.append((identity, f"Slack user {entry.slack} is also {seen[entry.slack]}"))
            seen.setdefault(entry.slack, identity)
        return clashes

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(role for entry in self.entries.values() for role in entry.roles)

    def members_of(self, role: str) -> tuple[str, ...]:
        return tuple(identity for identity, entry in self.entries.items() if role in entry.roles)

    def email_of(self, identity: str) -> str | None:
        entry = self.entries.get(identity)
        if entry is not None and entry.email:
            return entry.email
        return identity if "@" in identity else None

    def slack_user_of(self, identity: str) -> str | None:
        entry = self.entries.get(identity)
        return entry.slack if entry is not None else None

    def identity_of_slack_user(self, user_id: str) -> str | None:
        for identity, entry in self.entries.items():
            if entry.slack == user_id:
                return identity
        return None

    def identity_of_email(self, email: str) -> str:
        """The directory identity whose email this is, else the email itself."""
        wanted = email.casefold()
        for identity, entry in self.entries.items():
            if (entry.email or identity).casefold() == wanted:
                return identity
        return email

    def resolve_roles(self, names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Names with every `role:<name>` replaced by its members; also the roles that
        matched nobody (first mention wins, order kept)."""
        resolved: list[str] = []
        empty: list[str] = []
        for name in names:
            if name.startswith("role:"):
                members = self.members_of(name.removeprefix("role:"))
                resolved.extend(members)
                if not members:
                    empty.append(name)
            else:
                resolved.append(name)
        return tuple(dict.fromkeys(resolved)), tuple(empty)


class ReloadingDirectory:
    """The directory file, re-read when it changes (`proctor.reloading`); a broken edit keeps
    the last good one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # A bad file at start-up is fatal.
        self._file = Reloading(path, ApproverDirectory.load, what="approver directory")

    def current(self) -> ApproverDirectory:
        """Looked at on every use (one stat), so an edit counts from the next approval on."""
        self._file.refresh()
        return self._file.current()
