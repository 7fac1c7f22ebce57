"""docker-compose.yml and the Dockerfile hold together (no Docker engine runs here: this is
how the deployment files are checked).

Services, images, dependencies, health checks, env files, volumes and the commands each
container runs are checked against each other and against Proctor itself (its settings and
its CLI), so a typo in a variable or a dependency on a service without a health check fails.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from proctor.cli import cli
from proctor.settings import ProctorSettings
from proctor.settings_view import variable_name

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ONE_SHOT = {"temporal-schema", "temporal-namespace", "proctor-migrate", "proctor-payload-keys"}
LONG_RUNNING = set(SERVICES) - ONE_SHOT
SETTINGS = {variable_name(f) for f in ProctorSettings.model_fields}


def env_file_values(service: dict[str, Any]) -> dict[str, str]:
    """The variables of the service's env files, read from their committed .example."""
    files = service.get("env_file", [])
    values: dict[str, str] = {}
    for name in [files] if isinstance(files, str) else files:
        for line in (ROOT / f"{name}.example").read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {
        **env_file_values(service),
        **{k: str(v) for k, v in (service.get("environment") or {}).items()},
    }


def test_the_deployment_has_every_part() -> None:
    assert set(SERVICES) == {
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "proctor-migrate",
        "proctor-payload-keys",
        "proctor-worker",
        "proctor-approvals",
    }
    assert SERVICES["proctor-worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned_or_built_here(name: str) -> None:
    service = SERVICES[name]
    if "build" in service:
        assert service["build"] == "." and (ROOT / "Dockerfile").exists()
        return
    image = service["image"]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), image


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_exist_and_wait_for_the_right_thing(name: str) -> None:
    for target, rule in (SERVICES[name].get("depends_on") or {}).items():
        assert target in SERVICES, f"{name} depends on unknown {target}"
        condition = rule["condition"]
        if condition == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{target} has no health check"
        elif condition == "service_completed_successfully":
            assert target in ONE_SHOT and SERVICES[target].get("restart") == "no"
        else:
            raise AssertionError(f"{name} -> {target}: {condition}")


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_services_have_health_checks_and_restart(name: str) -> None:
    service = SERVICES[name]
    assert service["healthcheck"]["test"], name
    assert service.get("restart") == "unless-stopped", name


def test_health_checks_probe_what_the_services_serve() -> None:
    worker_env = environment(SERVICES["proctor-worker"])
    assert f"127.0.0.1:{worker_env['PROCTOR_METRICS_PORT']}/metrics" in str(
        SERVICES["proctor-worker"]["healthcheck"]["test"]
    )
    assert worker_env["PROCTOR_METRICS_HOST"] == "0.0.0.0"  # noqa: S104 (inside the container)
    app_env = environment(SERVICES["proctor-approvals"])
    assert f"127.0.0.1:{app_env['PROCTOR_APPROVALS_PORT']}/healthz" in str(
        SERVICES["proctor-approvals"]["healthcheck"]["test"]
    )
    assert f"{app_env['PROCTOR_APPROVALS_PORT']}:" in SERVICES["proctor-approvals"]["ports"][0]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_env_files_have_committed_examples_and_real_ones_are_ignored(name: str) -> None:
    files = SERVICES[name].get("env_file", [])
    for path in [files] if isinstance(files, str) else files:
        assert (ROOT / f"{path}.example").exists(), path
    assert "deploy/*.env" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_secret_is_written_in_the_compose_file(name: str) -> None:
    for key, value in (SERVICES[name].get("environment") or {}).items():
        if re.search(r"PASSWORD|PWD|SECRET|TOKEN|PASSPHRASE|DATABASE_URL", key):
            raise AssertionError(f"{name}: {key}={value} belongs in an env file")


@pytest.mark.parametrize("name", sorted(s for s in SERVICES if s.startswith("proctor")))
def test_proctor_variables_are_real_settings_and_commands_exist(name: str) -> None:
    service = SERVICES[name]
    unknown = {
        k
        for k in environment(service)
        if k.startswith(("PROCTOR_", "TEMPORAL_")) and k not in SETTINGS
    }
    assert not unknown, f"{name}: no such setting {unknown}"
    words = list(service["command"])
    group: click.Command = cli
    while words and isinstance(group, click.Group) and words[0] in group.commands:
        group = group.commands[words.pop(0)]
    assert group is not cli and not isinstance(group, click.Group), service["command"]
    for option in (w for w in words if w.startswith("--")):
        assert any(option in p.opts for p in group.params), f"{name}: {option}"
    if name != "proctor-payload-keys":  # the one job that never connects to anything
        assert "PROCTOR_DATABASE_URL" in environment(service)


def test_workers_share_keys_and_checkpoints_on_declared_volumes() -> None:
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    worker_env = environment(SERVICES["proctor-worker"])
    mounts = {m.split(":")[1] for m in SERVICES["proctor-worker"]["volumes"]}
    assert {
        worker_env["PROCTOR_AUDIT_KEY_DIR"],
        worker_env["PROCTOR_AUDIT_CHECKPOINT_SINK"],
        "/app/policies",
    } <= mounts


def test_every_proctor_process_shares_the_payload_ring_and_the_vote_keys() -> None:
    """One ring encrypts and decrypts history everywhere; the workers trust the vote keys the
    approvals app registers, and only the approvals app may write that directory."""
    ring = environment(SERVICES["proctor-payload-keys"])["PROCTOR_PAYLOAD_KEY_DIR"]
    for name in ("proctor-worker", "proctor-approvals"):
        env = environment(SERVICES[name])
        mounts = {m.split(":")[1]: m for m in SERVICES[name]["volumes"]}
        assert env["PROCTOR_PAYLOAD_KEY_DIR"] == ring and ring in mounts, name
        assert mounts[ring].startswith("payload-keys:"), name
        assert (
            SERVICES[name]["depends_on"]["proctor-payload-keys"]["condition"]
            == "service_completed_successfully"
        )
        votes = env["PROCTOR_APPROVAL_KEY_DIR"]
        assert mounts[votes].startswith("approval-keys:"), name
        assert mounts[votes].endswith(":ro") == (name == "proctor-worker"), name


def test_the_databases_line_up() -> None:
    """Postgres creates what Temporal and Proctor connect to, with the same credentials."""
    init = (ROOT / "deploy/postgres-init.sh").read_text()
    postgres = env_file_values(SERVICES["postgres"])
    temporal = environment(SERVICES["temporal"])
    schema = SERVICES["temporal-schema"]["command"][0]
    for database in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]):
        assert f"--db {database} setup-schema" in schema
        assert f"--db {database} update-schema" in schema
    assert temporal["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert environment(SERVICES["temporal-schema"])["SQL_PASSWORD"] == postgres["POSTGRES_PASSWORD"]
    worker_dsn = environment(SERVICES["proctor-worker"])["PROCTOR_DATABASE_URL"]
    login = re.fullmatch(r"postgresql://(\w+):([^@]+)@postgres:5432/(\w+)", worker_dsn)
    assert login is not None
    assert f"CREATE DATABASE {login.group(3)};" in init
    assert f"CREATE ROLE {login.group(1)} LOGIN" in init
    assert postgres["PROCTOR_WORKER_PASSWORD"] == login.group(2)
    assert f'"--app-login", "{login.group(1)}"' in str(
        SERVICES["proctor-migrate"]["command"]
    ).replace("'", '"')


def test_shutdown_grace_fits_inside_the_stop_timeout() -> None:
    for name in ("proctor-worker", "proctor-approvals"):
        grace = float(environment(SERVICES[name])["PROCTOR_SHUTDOWN_GRACE_SECONDS"])
        stop = SERVICES[name]["stop_grace_period"]
        assert stop.endswith("s") and float(stop[:-1]) > grace


def test_the_image_contains_every_package_and_runs_proctor() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in (p.rstrip("*") for p in packages):
        assert f"COPY {package} ./{package}" in dockerfile, package
    # COPY keeps proctor_server's links as links: the folders they lead to are copied too.
    links = [path for path in (ROOT / "proctor_server").iterdir() if path.is_symlink()]
    assert links
    for link in links:
        folder = link.resolve().relative_to(ROOT)
        assert f"COPY {folder} ./{folder}" in dockerfile, link
    assert 'ENTRYPOINT ["proctor"]' in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
