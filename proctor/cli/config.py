"""`proctor config show`: the settings every Proctor process would run with here."""

from __future__ import annotations

import json

import click
from pydantic import ValidationError

from proctor.cli.common import fail
from proctor.settings import ProctorSettings
from proctor.settings_view import settings_lines, variable_name


@click.group("config")
def config_group() -> None:
    """Proctor's configuration (environment variables)."""


def _variable(location: tuple[int | str, ...]) -> str:
    field = str(location[0]) if location else ""
    return variable_name(field) if field in ProctorSettings.model_fields else field.upper()


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(as_json: bool) -> None:
    """Every setting's effective value and where it came from; secrets masked."""
    try:
        settings = ProctorSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        fail(f"invalid configuration: {problems}")
    lines = settings_lines(settings)
    if as_json:
        click.echo(json.dumps([line.model_dump() for line in lines], indent=2))
        return
    width = max(len(line.variable) for line in lines)
    for line in lines:
        value = "(unset)" if line.value is None else line.value
        click.echo(f"{line.variable:<{width}}  {value}  [{line.source}]")
