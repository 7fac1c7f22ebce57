"""The error family holds: every error Proctor defines is a ProctorError, drawn in the tree,
and the `proctor` command prints one line for it and a traceback for anything else."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import proctor
import proctor.errors
from proctor.errors import ProctorError
from proctor.settings import NotConfigured, load_settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proctor", "proctor_server")


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names.extend(
            info.name
            for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}.")
            if not info.name.endswith("__main__")
        )
    return names


def _defined_errors() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_error_proctor_defines_is_a_proctor_error() -> None:
    strays = [
        f"{error.__module__}.{error.__qualname__}"
        for error in _defined_errors()
        if not issubclass(error, ProctorError)
    ]
    assert strays == []


def test_every_error_is_drawn_in_the_family_tree() -> None:
    tree = proctor.errors.__doc__ or ""
    missing = [error.__qualname__ for error in _defined_errors() if error.__qualname__ not in tree]
    assert missing == []


def test_the_checks_see_errors_in_every_package() -> None:
    modules = {error.__module__.split(".")[0] for error in _defined_errors()}
    assert {"proctor", "proctor_server"} <= modules


def test_bad_settings_name_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_CODEC_PORT", "s3cr3t-not-a-port")
    with pytest.raises(NotConfigured) as caught:
        load_settings()
    assert "PROCTOR_CODEC_PORT" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert "\n" not in str(caught.value)


def _proctor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from proctor.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_a_user_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PROCTOR_STATE_DIR": str(tmp_path), "PROCTOR_CODEC_PORT": "x"}
    result = _proctor("agent", "list", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: PROCTOR_CODEC_PORT: Input should be a valid integer, unable to parse string as "
        "an integer"
    ]
    assert "Traceback" not in result.stderr
