"""`mcp.yaml` read from real files: what loads, what it resolves to, and each mistake as one
`file:line: field: message` line at the line of the value at fault (the operator's editor
jumps there), nothing half-used."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.errors import InputError
from proctor.mcp_gateway.config import (
    GatewayConfig,
    GatewayConfigError,
    HttpUpstream,
    StdioUpstream,
    load_gateway_config,
)

ENVIRON = {"BIN": "/opt/mcp", "ROOT": "/srv/files", "TOKEN": "s3cret", "HOST": "crm.example.com"}

VALID = """\
agent_key: keys/agent.pem
servers:
  files:
    command: ["${BIN}/files-server", "--root", "${ROOT}"]
    env:
      API_TOKEN: "${TOKEN}"
      MODE: plain
    cwd: work/files
  crm:
    url: "https://${HOST}/mcp"
    headers:
      Authorization: "Bearer ${TOKEN}"
    prefix: ""
    call_timeout_seconds: 30
    govern_reads: true
"""


def write(tmp_path: Path, text: str, name: str = "mcp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """The lines of the one GatewayConfigError loading `path` raises."""
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path, environ if environ is not None else {})
    return str(caught.value).splitlines()


def test_a_stdio_and_an_http_server_load_with_variables_expanded(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    config = load_gateway_config(path, ENVIRON)
    files, crm = config.servers["files"], config.servers["crm"]
    assert isinstance(files, StdioUpstream) and isinstance(crm, HttpUpstream)
    assert files.command == ("/opt/mcp/files-server", "--root", "/srv/files")
    assert files.env == {"API_TOKEN": "s3cret", "MODE": "plain"}
    assert crm.url == "https://crm.example.com/mcp"
    assert crm.headers == {"Authorization": "Bearer s3cret"}
    assert (crm.call_timeout_seconds, crm.govern_reads) == (30.0, True)
    assert list(config.servers) == ["files", "crm"]


def test_relative_paths_resolve_against_the_files_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "proctor"
    folder.mkdir(parents=True)
    write(folder, VALID)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_gateway_config(Path("../etc/proctor/mcp.yaml"), ENVIRON)
    files = config.servers["files"]
    assert isinstance(files, StdioUpstream)
    assert config.agent_key == folder.resolve() / "keys" / "agent.pem"
    assert files.cwd == folder.resolve() / "work" / "files"


def test_absolute_paths_stay_and_a_server_without_cwd_runs_in_the_files_folder(
    tmp_path: Path,
) -> None:
    key = tmp_path / "elsewhere" / "agent.pem"
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", f"agent_key: {key}\nservers:\n  files:\n    command: [srv]\n")
    config = load_gateway_config(path, {})
    files = config.servers["files"]
    assert isinstance(files, StdioUpstream)
    assert config.agent_key == key
    assert files.cwd == (tmp_path / "sub").resolve()


def test_the_prefix_defaults_to_the_server_name_and_an_empty_one_means_none(
    tmp_path: Path,
) -> None:
    config = load_gateway_config(
        write(
            tmp_path,
            "servers:\n"
            "  files: {command: [a]}\n"
            "  crm: {url: 'http://crm', prefix: ''}\n"
            "  web: {url: 'http://web', prefix: w_}\n",
        ),
        {},
    )
    assert config.prefix_of("files") == "files__"
    assert config.prefix_of("crm") == ""
    assert config.prefix_of("web") == "w_"


def test_defaults(tmp_path: Path) -> None:
    config = load_gateway_config(
        write(tmp_path, "servers:\n  files: {command: [a]}\n  crm: {url: 'https://crm'}\n"), {}
    )
    files, crm = config.servers["files"], config.servers["crm"]
    assert isinstance(files, StdioUpstream) and isinstance(crm, HttpUpstream)
    assert config.agent_key is None
    assert config.hide_denied_tools is True
    assert config.rejoin_window_seconds == 600.0
    assert config.max_wait_seconds == 900.0
    assert config.progress_interval_seconds == 5.0
    assert config.transport_timeout_seconds == 30.0
    for server in (files, crm):
        assert (server.prefix, server.call_timeout_seconds, server.govern_reads) == (
            None,
            120.0,
            False,
        )
    assert (files.env, crm.headers) == ({}, {})


def test_settings_given_are_kept(tmp_path: Path) -> None:
    config = load_gateway_config(
        write(
            tmp_path,
            "servers: {files: {command: [a]}}\n"
            "hide_denied_tools: false\n"
            "rejoin_window_seconds: 0\n"
            "max_wait_seconds: 60\n"
            "progress_interval_seconds: 0.5\n"
            "transport_timeout_seconds: 3\n",
        ),
        {},
    )
    assert config.hide_denied_tools is False
    assert config.rejoin_window_seconds == 0.0
    assert (config.max_wait_seconds, config.progress_interval_seconds) == (60.0, 0.5)
    assert config.transport_timeout_seconds == 3.0


def test_a_variable_expands_once_and_its_value_is_taken_literally(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files:\n    command: ['${A}-${A}', '$A', '${B}']\n")
    files = load_gateway_config(path, {"A": "x", "B": "${A}"}).servers["files"]
    assert isinstance(files, StdioUpstream)
    assert files.command == ("x-x", "$A", "${A}")


def test_the_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_TEST_MCP_URL", "https://from-env.example.com")
    path = write(tmp_path, "servers:\n  crm:\n    url: ${PROCTOR_TEST_MCP_URL}/mcp\n")
    crm = load_gateway_config(path).servers["crm"]
    assert isinstance(crm, HttpUpstream) and crm.url == "https://from-env.example.com/mcp"


UNSET_TEMPLATE = """\
agent_key: "{agent_key}keys/agent.pem"
servers:
  files:
    command:
      - srv
      - "{command}--root"
    env:
      API_TOKEN: "{token}t"
    cwd: "{cwd}work"
  crm:
    url: "{url}https://crm"
    headers:
      Authorization: "{auth}Bearer t"
"""
"""A valid file with `${MISSING}` put in front of one value (the others get "")."""


@pytest.mark.parametrize(
    "slot, line, field",
    [
        ("agent_key", 1, "agent_key"),
        ("command", 6, "servers.files.command.1"),
        ("token", 8, "servers.files.env.API_TOKEN"),
        ("cwd", 9, "servers.files.cwd"),
        ("url", 11, "servers.crm.url"),
        ("auth", 13, "servers.crm.headers.Authorization"),
    ],
)
def test_an_unset_variable_is_one_error_at_the_line_of_its_value(
    tmp_path: Path, slot: str, line: int, field: str
) -> None:
    slots = dict.fromkeys(["agent_key", "command", "token", "cwd", "url", "auth"], "")
    assert load_gateway_config(write(tmp_path, UNSET_TEMPLATE.format(**slots)), {}).servers
    path = write(tmp_path, UNSET_TEMPLATE.format(**{**slots, slot: "${MISSING}"}), "bad.yaml")
    assert problems(path, {"OTHER": "x"}) == [
        f"{path}:{line}: {field}: ${{MISSING}} is not set in the environment"
    ]


def test_an_unset_variable_is_an_input_error_and_never_an_empty_value(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  crm:\n    url: https://crm\n    headers: {X: '${T}'}\n")
    with pytest.raises(InputError) as caught:
        load_gateway_config(path, {})
    assert (
        str(caught.value)
        == f"{path}:4: servers.crm.headers.X: ${{T}} is not set in the environment"
    )


def test_an_unknown_top_level_key_is_named_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files: {command: [a]}\nhide_denied_tool: false\n")
    assert problems(path) == [f"{path}:3: hide_denied_tool: unknown field"]


def test_a_typo_in_a_servers_key_is_named_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "servers:\n  files:\n    command: [a]\n    call_timout_seconds: 5\n",
    )
    assert problems(path) == [f"{path}:4: servers.files.call_timout_seconds: unknown field"]


def test_comand_for_command_is_an_unknown_field_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files:\n    comand: [a]\n")
    assert f"{path}:3: servers.files.comand: unknown field" in problems(path)


def test_a_server_with_both_command_and_url_is_named_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "servers:\n  files: {command: [a]}\n  both: {command: [a], url: 'http://x'}\n",
    )
    [problem] = problems(path)
    assert problem.startswith(f"{path}:3: servers.both")
    assert "exactly one of command or url" in problem


def test_a_server_with_neither_command_nor_url_is_named_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files: {command: [a]}\n  neither: {prefix: n}\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:3: servers.neither")
    assert "command" in problem  # "command: Field required" or "needs … command or url"


def test_a_server_of_no_kind_is_an_error_naming_it(tmp_path: Path) -> None:
    """What holds today as well as once the problem is located (the tests above)."""
    for name, server in [("both", "{command: [a], url: 'http://x'}"), ("none", "{prefix: n}")]:
        path = write(tmp_path, f"servers:\n  files: {{command: [a]}}\n  {name}: {server}\n")
        [problem] = problems(path)
        assert problem.startswith(f"{path}:")
        assert name in problem.removeprefix(f"{path}:") and "command" in problem


def test_every_problem_is_reported_not_only_the_first_server_of_no_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "servers:\n  both: {command: [a], url: 'http://x'}\nrejoin_window_seconds: -1\n",
    )
    assert len(problems(path)) == 2


def test_an_invalid_server_name_is_named_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "servers:\n  files: {command: [a]}\n  'bad name': {command: [a]}\n"
        "  -dash: {command: [a]}\n",
    )
    found = problems(path)
    assert len(found) == 2, found
    assert found[0].startswith(f"{path}:3: servers.bad name")
    assert found[1].startswith(f"{path}:4: servers.-dash")
    assert all("should match pattern" in p for p in found)


def test_a_url_that_is_not_http_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  crm: {url: 'ftp://crm'}\n")
    assert f"{path}:2: servers.crm.url: String should match pattern '^https?://'" in problems(path)


def test_a_url_that_is_not_http_is_the_only_error(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  crm:\n    prefix: c\n    url: 'ftp://crm'\n")
    assert problems(path) == [
        f"{path}:4: servers.crm.url: String should match pattern '^https?://'"
    ]


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("rejoin_window_seconds", "-1", "Input should be greater than or equal to 0"),
        ("max_wait_seconds", "0", "Input should be greater than 0"),
        ("progress_interval_seconds", "-0.5", "Input should be greater than 0"),
        ("transport_timeout_seconds", "-3", "Input should be greater than 0"),
    ],
)
def test_a_negative_or_zero_timeout_is_an_error_at_its_line(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    path = write(tmp_path, f"servers:\n  files: {{command: [a]}}\n{setting}: {value}\n")
    assert problems(path) == [f"{path}:3: {setting}: {message}"]


def test_a_servers_negative_call_timeout_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files: {command: [a], call_timeout_seconds: -1}\n")
    assert (
        f"{path}:2: servers.files.call_timeout_seconds: Input should be greater than 0"
        in problems(path)
    )


def test_a_servers_negative_call_timeout_is_the_only_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files:\n    command: [a]\n    call_timeout_seconds: -1\n")
    assert problems(path) == [
        f"{path}:4: servers.files.call_timeout_seconds: Input should be greater than 0"
    ]


def test_no_servers_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hide_denied_tools: false\nservers: {}\n")
    assert problems(path) == [
        f"{path}:2: servers: Dictionary should have at least 1 item after validation, not 0"
    ]


def test_an_empty_file_misses_servers(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    assert problems(path) == [f"{path}:1: servers: Field required"]


def test_a_yaml_syntax_error_is_at_the_line_of_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "servers:\n  files:\n    command: [a]\n   cwd: work\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:4: yaml: ")


def test_a_file_that_is_not_a_mapping_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "- files\n- crm\n")
    assert problems(path) == [f"{path}:1: file: the file must be a mapping"]


def test_a_missing_file_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "mcp.yaml"
    assert problems(path) == [f"{path}:0: file: No such file or directory"]


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    [problem] = problems(tmp_path)
    assert problem.startswith(f"{tmp_path}:0: file: ")


def test_the_loaded_config_is_frozen(tmp_path: Path) -> None:
    config = load_gateway_config(write(tmp_path, "servers: {files: {command: [a]}}\n"), {})
    assert isinstance(config, GatewayConfig)
    with pytest.raises(ValueError, match="frozen"):
        config.hide_denied_tools = False
