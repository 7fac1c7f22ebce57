"""The gateway's `mcp.yaml`: which upstream MCP servers it proxies, and as which agent.

Read as policy files are (one error per line, `file:line: field: message`, nothing half-used):
paths are relative to the file, and `${NAME}` in a string is the environment variable NAME
(unset is an error, so a missing token never becomes an empty header).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from proctor.errors import InputError
from proctor.policy.loader import PolicyError, PolicyProblem, read_yaml_mapping

SERVER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"
"""An upstream's name: part of tool names and of the action `mcp:<server>:<tool>`."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class GatewayConfigError(InputError):
    """`mcp.yaml` does not load: each problem on its own `file:line: field: message` line."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Upstream(_Strict):
    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{0,40}$")
    """What the upstream's tool names are listed under (default `<server>__`; "" for none)."""
    call_timeout_seconds: float = Field(default=120.0, gt=0)
    """How long a forwarded call may take before the upstream counts as hung (restarted)."""
    govern_reads: bool = False
    """Govern `resources/read` as the action `mcp:<server>:read` (params: the uri)."""


class StdioUpstream(_Upstream):
    """An upstream run as a subprocess speaking MCP on its stdin/stdout."""

    command: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = {}
    cwd: Path | None = None


class HttpUpstream(_Upstream):
    """An upstream reached over streamable HTTP."""

    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = {}


def _kind(value: Any) -> str | None:
    """Which model a server is: by `command` or `url`, never both (a stdio server without
    its command is told so, with any misspelt key)."""
    if isinstance(value, BaseModel):
        return "http" if isinstance(value, HttpUpstream) else "stdio"
    if not isinstance(value, dict):
        return "stdio"
    if "command" in value and "url" in value:
        return None
    return "http" if "url" in value else "stdio"


Upstream = Annotated[
    Annotated[StdioUpstream, Tag("stdio")] | Annotated[HttpUpstream, Tag("http")],
    Discriminator(
        _kind,
        custom_error_type="one_kind",
        custom_error_message="needs exactly one of command or url",
    ),
]


class GatewayConfig(_Strict):
    agent_key: Path | None = None
    """The key of the one agent this gateway runs as (else `PROCTOR_AGENT_KEY`)."""
    servers: dict[Annotated[str, Field(pattern=SERVER_NAME_PATTERN)], Upstream] = Field(
        min_length=1
    )
    hide_denied_tools: bool = True
    """Leave out of `tools/list` the tools policy denies this agent whatever the arguments."""
    rejoin_window_seconds: float = Field(default=600.0, ge=0)
    """The same call (tool and arguments) within this window is the same request (0: only
    while its request is open)."""
    max_wait_seconds: float = Field(default=900.0, gt=0)
    """How long one `tools/call` waits for an approval before answering "still waiting"."""
    progress_interval_seconds: float = Field(default=5.0, gt=0)
    """How often a waiting call sends a progress notification."""
    transport_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long connecting to an upstream may take (a request on it: `call_timeout_seconds`)."""

    def prefix_of(self, server: str) -> str:
        given = self.servers[server].prefix
        return f"{server}__" if given is None else given


def load_gateway_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """The gateway config at `path`, `${NAME}` expanded from `environ` (default: the process's)
    and relative paths resolved against the file's folder."""
    file = Path(path)
    label = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise GatewayConfigError(f"{label}:0: file: {exc.strerror or exc}") from exc
    env = os.environ if environ is None else environ
    try:
        data, lines = read_yaml_mapping(raw, label)
        expanded = _expand(data, (), env, label, lines)
        config = _validate(expanded, label, lines)
    except PolicyError as exc:
        raise GatewayConfigError(str(exc)) from exc
    return _resolved(config, file.parent)


def _validate(data: dict[str, Any], label: str, lines: dict[Any, int]) -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            at = tuple(error["loc"])
            if len(at) > 2 and at[0] == "servers" and at[2] in ("stdio", "http"):
                at = (*at[:2], *at[3:])  # the union's tag: not in the YAML
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            field = ".".join(map(str, at)) or "file"
            problems.append(PolicyProblem(label, _line_of(lines, at), field, message))
        raise PolicyError(problems) from exc


def _expand(
    value: Any, at: tuple[Any, ...], env: Mapping[str, str], label: str, lines: dict[Any, int]
) -> Any:
    if isinstance(value, str):
        return _expand_text(value, at, env, label, lines)
    if isinstance(value, dict):
        return {key: _expand(item, (*at, key), env, label, lines) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, (*at, i), env, label, lines) for i, item in enumerate(value)]
    return value


def _expand_text(
    text: str, at: tuple[Any, ...], env: Mapping[str, str], label: str, lines: dict[Any, int]
) -> str:
    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            line = _line_of(lines, at)
            field = ".".join(map(str, at))
            raise PolicyError(
                [PolicyProblem(label, line, field, f"${{{name}}} is not set in the environment")]
            )
        return env[name]

    return _VARIABLE.sub(value_of, text)


def _line_of(lines: dict[Any, int], at: tuple[Any, ...]) -> int:
    while at and at not in lines:
        at = at[:-1]
    return lines.get(at, 1)


def _resolved(config: GatewayConfig, folder: Path) -> GatewayConfig:
    def under(path: Path | None) -> Path | None:
        return None if path is None else (folder / path.expanduser()).resolve()

    servers: dict[str, StdioUpstream | HttpUpstream] = {}
    for name, server in config.servers.items():
        if isinstance(server, StdioUpstream):
            cwd = under(server.cwd) if server.cwd is not None else folder.resolve()
            servers[name] = server.model_copy(update={"cwd": cwd})
        else:
            servers[name] = server
    return config.model_copy(update={"agent_key": under(config.agent_key), "servers": servers})
