"""The `proctor` command."""

from __future__ import annotations

import os
import sys

import click

from proctor.cli.agents import agent_group
from proctor.cli.approvals import approvals_group
from proctor.cli.audit import audit_group
from proctor.cli.cancel import cancel
from proctor.cli.codec import codec_server, payload_key_group
from proctor.cli.config import config_group
from proctor.cli.delegate import delegate
from proctor.cli.demo import demo
from proctor.cli.grants import grants_group
from proctor.cli.history import history_group, replay
from proctor.cli.mcp_gateway import mcp_gateway
from proctor.cli.policy import policy_group
from proctor.cli.stack import approvals_app, db_group, up, worker
from proctor.cli.votes import approve, approver_group, deny
from proctor.errors import ProctorError


@click.group()
@click.version_option(package_name="proctor")
def cli() -> None:
    """Proctor: durable governance for AI agents' actions."""


for command in (
    up,
    worker,
    approvals_app,
    db_group,
    agent_group,
    policy_group,
    audit_group,
    approvals_group,
    approve,
    deny,
    history_group,
    replay,
    config_group,
    demo,
    payload_key_group,
    codec_server,
):
    cli.add_command(command)
cli.add_command(cancel)
cli.add_command(approver_group)
cli.add_command(grants_group)
cli.add_command(delegate)
cli.add_command(mcp_gateway)


def main() -> None:
    """Entry point. Leaves with os._exit: Temporal's native client threads can abort a normal
    interpreter shutdown of a short-lived process (temporalio/sdk-python#300)."""
    try:
        cli()
        code = 0
    except ProctorError as exc:
        # A command that let one through: still one line, never a traceback.
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
