"""A release's recorded histories stay: workflows it started may still be running, so the code
of every later version must replay them (tests/workflows/test_replay.py replays every fixture).

Each release lists its fixtures with their SHA-256 in tests/histories/releases/<version>.json.
Re-recording or deleting one would quietly drop the proof that a running workflow of that
release still replays; this test refuses both. A new path gets a new fixture beside them.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

HISTORIES = Path(__file__).parents[1] / "histories"
RELEASES = sorted((HISTORIES / "releases").glob("v*.json"))
PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def changed_or_missing(manifest: Path, histories: Path = HISTORIES) -> list[str]:
    """The fixtures `manifest` lists that are gone from `histories` or differ from release."""
    listed: dict[str, str] = json.loads(manifest.read_text())["histories"]
    problems = []
    for name, sha256 in sorted(listed.items()):
        path = histories / name
        if not path.exists():
            problems.append(f"{name}: removed")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            problems.append(f"{name}: changed since the release")
    return problems


@pytest.mark.parametrize("manifest", RELEASES, ids=[m.stem for m in RELEASES])
def test_a_releases_histories_are_kept_as_recorded(manifest: Path) -> None:
    assert changed_or_missing(manifest) == []


def test_the_version_being_built_has_its_histories_listed() -> None:
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert (HISTORIES / "releases" / f"v{version}.json").exists()


def test_the_check_sees_a_changed_and_a_removed_fixture(tmp_path: Path) -> None:
    (tmp_path / "kept.json").write_text("{}")
    (tmp_path / "edited.json").write_text('{"events": []}')
    manifest = tmp_path / "v9.9.9.json"
    manifest.write_text(
        json.dumps(
            {
                "histories": {
                    "kept.json": hashlib.sha256(b"{}").hexdigest(),
                    "edited.json": hashlib.sha256(b"{}").hexdigest(),
                    "gone.json": hashlib.sha256(b"{}").hexdigest(),
                }
            }
        )
    )
    assert changed_or_missing(manifest, tmp_path) == [
        "edited.json: changed since the release",
        "gone.json: removed",
    ]
