"""What the command line may print of an agent's parameters: redacted with the policy's audit
rules, as the ledger and the Slack messages are (a terminal and its scrollback are not the
ledger).

Fail closed on the data, not on the command: without a loadable policy set only the
parameters' names are printed (and stderr says why). Without the worker's key directory the
markers are keyed with a one-off key: the values stay hidden, only their fingerprints no longer
match the ledger's (`proctor audit find-value`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import click

from proctor.audit.keys import KeyFileError, LedgerKeys
from proctor.audit.redaction import redact_for_display
from proctor.policy import PolicyEngine, PolicyError, load_policy_dir
from proctor.settings import ProctorSettings, audit_key_dir

Params = dict[str, Any]
Redactor = Callable[[Params], Params]


def params_redactor(config: ProctorSettings) -> Redactor:
    """Redacts parameters for display with the policy set in PROCTOR_POLICY_DIR."""
    try:
        rules = PolicyEngine(load_policy_dir(config.policy_dir)).audit_rules
    except PolicyError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unreadable"
        click.echo(
            f"warning: parameter values hidden, the policy's audit rules could not be "
            f"read ({first})",
            err=True,
        )
        return names_only
    try:
        key = LedgerKeys.load(audit_key_dir(config)).redaction_hmac
    except (KeyFileError, OSError):
        key = secrets.token_bytes(32)
    return lambda params: redact_for_display(rules, key, params)


def names_only(params: Params) -> Params:
    return {"fields": sorted(params)}
