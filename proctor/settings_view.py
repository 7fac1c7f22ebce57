"""The effective settings as an operator should see them: every option, where its value came
from, secrets masked (`proctor config show`)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import AliasChoices, SecretStr

from proctor.db import redact_dsn
from proctor.models import Frozen
from proctor.settings import (
    NotConfigured,
    ProctorSettings,
    audit_key_dir,
    checkpoint_sink_dir,
    database_url,
    read_stack,
    temporal_address,
)

MASK = "********"
Source = Literal["environment", "default", "proctor up", "derived"]


class SettingLine(Frozen):
    variable: str
    value: str | None
    source: Source
    secret: bool = False


def variable_name(field: str) -> str:
    """The environment variable a setting is read from (the first alias, when it has some)."""
    info = ProctorSettings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    prefix = ProctorSettings.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def _shown(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return MASK
    return str(value)


def settings_lines(settings: ProctorSettings) -> list[SettingLine]:
    """One line per option, in declaration order, then what the derived ones resolve to."""
    given = settings.model_fields_set
    lines = []
    for field, info in ProctorSettings.model_fields.items():
        value = getattr(settings, field)
        secret = info.annotation is SecretStr or SecretStr in get_args(info.annotation)
        lines.append(
            SettingLine(
                variable=variable_name(field),
                value=_shown(value),
                source="environment" if field in given else "default",
                secret=secret,
            )
        )
    return [*lines, *_resolved(settings)]


def _resolved(settings: ProctorSettings) -> list[SettingLine]:
    """Values other commands work out: from `proctor up`'s stack file or from other settings."""
    stack = read_stack(settings)
    try:
        dsn: str | None = redact_dsn(database_url(settings))
    except NotConfigured:
        dsn = None
    from_stack: Source = "proctor up" if stack is not None else "derived"
    return [
        SettingLine(
            variable="(effective) database",
            value=dsn,
            source="environment" if settings.database_url else from_stack,
        ),
        SettingLine(
            variable="(effective) temporal",
            value=temporal_address(settings),
            source="environment" if settings.temporal_address else from_stack,
        ),
        SettingLine(
            variable="(effective) audit key dir",
            value=str(audit_key_dir(settings)),
            source="derived",
        ),
        SettingLine(
            variable="(effective) checkpoint sink",
            value=str(checkpoint_sink_dir(settings)),
            source="derived",
        ),
    ]
