"""`proctor config show`: every option, its source, and never a secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import SecretStr

from proctor.settings import ProctorSettings
from proctor.settings_view import MASK, settings_lines, variable_name
from tests.helpers.cli import run

README = Path(__file__).parents[2] / "README.md"
SECRETS = {
    "PROCTOR_SLACK_BOT_TOKEN": "xoxb-very-secret-token",
    "PROCTOR_SLACK_SIGNING_SECRET": "signing-secret-value",
    "PROCTOR_SLACK_APP_TOKEN": "xapp-app-token-value",
    "PROCTOR_KEY_PASSPHRASE": "hunter2-passphrase",
    "PROCTOR_DATABASE_URL": "postgresql://proctor:db-password-1@db:5432/proctor",
}


def documented_variables() -> set[str]:
    """Names in the README's configuration table; "`X_ROWS` / `_SECONDS`" names two."""
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`((?:PROCTOR|TEMPORAL)_[A-Z_]+)`", table))
    for full, suffix in re.findall(r"`((?:PROCTOR|TEMPORAL)_[A-Z_]+)` / `(_[A-Z_]+)`", table):
        names.add(full.rsplit("_", 1)[0] + suffix)
    return names


def test_every_setting_is_documented_in_the_readme_table() -> None:
    documented = documented_variables()
    missing = [
        variable_name(f) for f in ProctorSettings.model_fields if variable_name(f) not in documented
    ]
    assert not missing, f"missing from the README's configuration table: {missing}"


def test_lines_mask_secrets_and_say_where_values_come_from(monkeypatch: object) -> None:
    settings = ProctorSettings(
        slack_bot_token=SecretStr("xoxb-very-secret-token"),
        database_url=SecretStr("postgresql://u:pw@h/db"),
    )
    lines = {line.variable: line for line in settings_lines(settings)}
    assert lines["PROCTOR_SLACK_BOT_TOKEN"].value == MASK
    assert lines["PROCTOR_SLACK_BOT_TOKEN"].secret
    assert lines["PROCTOR_SLACK_BOT_TOKEN"].source == "environment"
    assert lines["PROCTOR_TASK_QUEUE"].source == "default"
    assert lines["(effective) database"].value == "postgresql://u:***@h/db"
    assert len([v for v in lines if not v.startswith("(")]) == len(ProctorSettings.model_fields)


def test_config_show_never_prints_a_secret(tmp_path: Path) -> None:
    env = {**SECRETS, "PROCTOR_METRICS_PORT": "9464", "PROCTOR_LOG_FORMAT": "json"}
    text = run(["config", "show"], env, tmp_path)
    as_json = run(["config", "show", "--json"], env, tmp_path)
    for done in (text, as_json):
        assert done.returncode == 0, done.stderr
        for secret in SECRETS.values():
            assert secret not in done.stdout
        assert "db-password-1" not in done.stdout
    rows = {r["variable"]: r for r in json.loads(as_json.stdout)}
    assert rows["PROCTOR_METRICS_PORT"] == {
        "variable": "PROCTOR_METRICS_PORT",
        "value": "9464",
        "source": "environment",
        "secret": False,
    }
    assert rows["(effective) database"]["value"] == "postgresql://proctor:***@db:5432/proctor"
    assert "PROCTOR_LOG_FORMAT                json  [environment]" in text.stdout


def test_config_show_names_the_variable_of_a_bad_value(tmp_path: Path) -> None:
    done = run(["config", "show"], {"PROCTOR_METRICS_PORT": "not-a-port"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid configuration: PROCTOR_METRICS_PORT: ")
