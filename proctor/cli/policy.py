"""`proctor policy check`: validate a policy directory before the worker loads it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from proctor.cli.common import settings
from proctor.policy import PolicyEngine, PolicyError, load_policy_dir


@click.group("policy")
def policy_group() -> None:
    """Work with policy files."""


@policy_group.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def check(directory: Path | None) -> None:
    """Validate DIRECTORY (default PROCTOR_POLICY_DIR); print file:line: field: message."""
    target = directory or settings().policy_dir
    try:
        policy_set = load_policy_dir(target)
        PolicyEngine(policy_set)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    rules = sum(len(f.policy.permissions.allow) + len(f.policy.permissions.deny)
                + len(f.policy.permissions.escalate) for f in policy_set.files)
    click.echo(f"{target}: {len(policy_set.files)} files, {rules} rules, "
               f"version {policy_set.version}: OK")
