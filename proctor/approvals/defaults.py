"""The organisation's default approvers: who decides an escalation whose rule names nobody.

They are `PROCTOR_DEFAULT_APPROVERS` in the order given, then the approver directory's people
holding `PROCTOR_DEFAULT_APPROVER_ROLE` (default `approver`) in the directory's order, each
once. They are resolved when a request is decided (the decision records them, so the workflow
knows who was asked), against the directory as it is then.
"""

from __future__ import annotations

from dataclasses import dataclass

from proctor.approvals.directory import ApproverDirectory
from proctor.policy.schema import check_approver_name
from proctor.settings import NotConfigured, ProctorSettings

DEFAULT_ROLE = "approver"


@dataclass(frozen=True)
class DefaultApprovers:
    names: tuple[str, ...] = ()
    """Named outright (identities, `role:` or `slack-group:` references)."""
    role: str | None = DEFAULT_ROLE
    """Everyone in the directory holding this role."""

    @classmethod
    def from_settings(cls, settings: ProctorSettings) -> DefaultApprovers:
        """From the two settings; a malformed one is NotConfigured naming the variable."""
        names = tuple(
            name.strip() for name in (settings.default_approvers or "").split(",") if name.strip()
        )
        for name in names:
            try:
                check_approver_name(name)
            except ValueError as exc:
                raise NotConfigured(f"PROCTOR_DEFAULT_APPROVERS: {exc}") from None
            if name.startswith("group:"):
                raise NotConfigured(
                    f"PROCTOR_DEFAULT_APPROVERS: {name!r}: groups live in policy files; "
                    "name the people, a role: or a slack-group:"
                )
        role = (settings.default_approver_role or "").strip() or None
        if role is not None and (":" in role or any(c.isspace() for c in role)):
            raise NotConfigured(f"PROCTOR_DEFAULT_APPROVER_ROLE: {role!r} is not a role name")
        return cls(names, role)

    def resolve(self, directory: ApproverDirectory) -> tuple[str, ...]:
        """Who is asked now: names first, then the role's holders; `role:` names resolved
        through the directory; nobody if neither yields anyone."""
        role = (f"role:{self.role}",) if self.role else ()
        resolved, _ = directory.resolve_roles((*self.names, *role))
        return resolved

    def describe(self) -> str:
        """Where the default approvers come from, for messages."""
        parts = []
        if self.names:
            parts.append(f"PROCTOR_DEFAULT_APPROVERS ({', '.join(self.names)})")
        if self.role:
            parts.append(f"the directory's holders of role {self.role!r}")
        return " and ".join(parts) or "none configured"
