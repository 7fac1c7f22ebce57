"""The server side's typed settings from the environment (pydantic-settings: the `server`
extra).

Configuration never travels in workflow inputs (they are recorded in history and shown in the
UI); every process reads it here. The settings connecting to Temporal, and where `proctor up`
tells other commands it runs, are the agent side's too: they live in `proctor.temporal`
(`ConnectionSettings`, inherited here) and are re-exported for the server's modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from proctor.temporal import ENV_PREFIX, ConnectionSettings
from proctor.temporal import STACK_FILE as STACK_FILE
from proctor.temporal import NotConfigured as NotConfigured
from proctor.temporal import StackInfo as StackInfo
from proctor.temporal import payload_key_dir as payload_key_dir
from proctor.temporal import read_stack as read_stack
from proctor.temporal import stack_file as stack_file
from proctor.temporal import temporal_address as temporal_address


class ProctorSettings(BaseSettings, ConnectionSettings):
    """Every process's settings: the connection's (inherited: the same variables and defaults
    as the agent side's) and the server's own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    policy_dir: Path = Path("policies")
    policy_reload_seconds: float = Field(default=2.0, ge=0)
    """How often the worker looks for changed policy files (0: never)."""
    database_url: SecretStr | None = None
    """Postgres DSN; when unset, the embedded one recorded in the state dir."""
    initial_trust: float = Field(default=100.0, ge=0, le=100)
    """The trust score of a newly registered agent."""
    signature_window_seconds: float = Field(default=300.0, gt=0)
    """How far a request's timestamp may be from the worker's clock, either way."""
    max_delegation_depth: int = Field(default=3, ge=1, le=16)
    """The most links a request's delegation chain may have (longer chains are refused)."""
    audit_key_dir: Path | None = None
    """The worker's ledger keys (checkpoint signing, redaction HMAC, subject-key wrapping);
    default `<state dir>/keys`. Keep them outside the database and back them up."""
    audit_checkpoint_sink: Path | None = None
    """A directory outside Postgres that receives every signed checkpoint (append-only);
    default `<state dir>/audit-checkpoints`. Point it at WORM storage in production."""
    audit_trusted_keys: str | None = None
    """Public keys (PEM files, comma-separated) that may sign checkpoints: pinned outside the
    database and the sink. Default: the public half of the worker's own key in the key dir.
    A key found in the sink or in Postgres is never trusted."""
    audit_checkpoint_rows: int = Field(default=1000, ge=1)
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0)
    """A checkpoint covers at most this many rows, and no row waits longer than this many
    seconds to be covered by one."""
    temporal_ui_port: int = 8233
    approvers_file: Path = Path("approvers.yaml")
    """The approver directory (Slack ids, emails, roles); none there: identities are emails."""
    default_approvers: str | None = None
    """Comma-separated approvers (identities, `role:` or `slack-group:` references) asked when
    an escalate rule names none, besides the default role's holders."""
    default_approver_role: str | None = "approver"
    """The approver directory's people holding this role are asked when an escalate rule
    names no approvers (empty: nobody by role). Nobody at all: such requests time out, denied."""
    slack_bot_token: SecretStr | None = None
    """xoxb- token of the Proctor Slack app; unset: no Slack messages (the CLI still decides)."""
    slack_signing_secret: SecretStr | None = None
    """Verifies that interactivity requests come from Slack (HTTP mode)."""
    slack_app_token: SecretStr | None = None
    """xapp- token: the approvals app uses Socket Mode (no public URL) instead of HTTP."""
    slack_channel: str | None = None
    """Default channel for approval requests (a rule's `channel:` wins)."""
    slack_api_url: str | None = None
    """Slack Web API base URL (default Slack's own; set for a proxy or a test stand-in)."""
    approvals_in_worker: bool = True
    """`proctor worker` / `proctor up` also serve the approvals app when Slack is configured
    (a deployment running `proctor approvals-app` separately turns this off)."""
    approvals_host: str = "127.0.0.1"
    approvals_port: int = Field(default=3000, ge=0, le=65535)
    """Where the approvals app serves Slack's interactivity endpoint (/slack/events)."""
    approval_key_dir: Path | None = None
    """Trusted public keys that may sign votes: `approvers/<id>/*.pem` (approvers' own keys)
    and `channels/<name>.pem` (approval services that authenticate the human themselves, e.g.
    the Slack app); default `<state dir>/approval-keys`. Agents must not be able to write it."""
    channel_key: Path | None = None
    """The Slack approvals app's private vote-signing key; default
    `<approval key dir>/channels/slack.key` (created with its public half on first start)."""
    codec_port: int | None = Field(default=None, ge=0, le=65535)
    """The codec endpoint for the Temporal UI (decrypts payloads for authenticated operators);
    unset: not served."""
    codec_token: SecretStr | None = None
    """Bearer token the codec endpoint requires (the Temporal UI sends it)."""
    key_passphrase: SecretStr | None = None
    """Encrypts the private keys `proctor agent create` writes (else they are unencrypted)."""
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Prometheus endpoint (/metrics) of the worker and the approvals app; unset: none."""
    sdk_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """The Temporal SDK's own Prometheus endpoint (task latencies, pollers, slots); unset:
    none. Separate from Proctor's: the SDK serves it from its native runtime."""
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    """On SIGTERM/SIGINT the worker stops polling and lets activities in flight finish for this
    long; what is still running then is cancelled and handed back to Temporal for another
    worker (give the container's stop timeout more than this)."""
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line with workflow_id / request_id when known."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_cached_workflows: int = Field(default=1000, ge=0)
    """Workflows a worker keeps in memory between their tasks (the rest replay from history when
    they next wake: an approval waiting for days costs no memory once evicted); 0: none."""
    workflow_sandbox: bool = False
    """Run workflow code in Temporal's sandbox (which re-imports the workflow module and enters
    the sandbox for every payload: ~2x the worker's CPU per action). Off by default: CI proves
    determinism instead, replaying every recorded history in the sandbox and checking what
    `workflows/` may import."""


def load_settings() -> ProctorSettings:
    """The settings, or one line naming the environment variable that is wrong (never the
    value: it may be a secret)."""
    try:
        return ProctorSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PROCTOR_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise NotConfigured(problems) from None


SLACK_SECRETS = ("slack_bot_token", "slack_signing_secret", "slack_app_token")


def check_slack_secrets(settings: ProctorSettings) -> None:
    """Refuse a Slack secret that is set but blank or padded with whitespace. Unset means
    "no Slack"; an empty value is a slip (`VAR=` in an env file, a missing `$(cat …)`), and
    would start an app that verifies nothing or fails every call. Not a pydantic validator:
    the processes turn NotConfigured, not ValidationError, into one line."""
    for field in SLACK_SECRETS:
        secret = getattr(settings, field)
        if secret is None:
            continue
        value = secret.get_secret_value()
        variable = f"{settings.model_config.get('env_prefix', '')}{field}".upper()
        if not value.strip():
            raise NotConfigured(
                f"{variable} is set but empty: give the value from the Slack "
                f"app's settings, or unset the variable"
            )
        if value != value.strip():
            raise NotConfigured(
                f"{variable} has leading or trailing whitespace (a stray "
                f"newline?): Slack's tokens and secrets have none"
            )


def database_url(settings: ProctorSettings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    stack = read_stack(settings)
    if stack is not None:
        return stack.database_url
    raise NotConfigured(
        f"no database: set PROCTOR_DATABASE_URL, or start the embedded stack with `proctor up` "
        f"(it records its database in {stack_file(settings)})"
    )


def audit_key_dir(settings: ProctorSettings) -> Path:
    return settings.audit_key_dir or settings.state_dir / "keys"


def approval_key_dir(settings: ProctorSettings) -> Path:
    return settings.approval_key_dir or settings.state_dir / "approval-keys"


def checkpoint_sink_dir(settings: ProctorSettings) -> Path:
    return settings.audit_checkpoint_sink or settings.state_dir / "audit-checkpoints"
