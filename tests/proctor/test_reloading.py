"""The one hot-reload mechanism, on real files: a change is picked up, a bad one keeps the last
good version (one error line, not retried until the next write), a deleted file is a change
like any other, and a write that restores the old mtime and size is still seen."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from proctor.errors import InputError
from proctor.reloading import Refused, Reloaded, Reloading, fingerprint


def read_number(path: Path) -> int:
    """A strict little format: the file holds one integer."""
    text = path.read_text()
    if not text.strip().isdigit():
        raise InputError(f"{path}: {text.strip()!r} is not a number")
    return int(text)


def write(path: Path, text: str) -> None:
    """A new write, later than the last one even on a coarse clock."""
    time.sleep(0.02)
    path.write_text(text)


@pytest.fixture
def number(tmp_path: Path) -> Path:
    path = tmp_path / "number.txt"
    path.write_text("1")
    return path


def test_a_change_is_picked_up_and_an_unchanged_file_is_not_reloaded(number: Path) -> None:
    loads: list[int] = []

    def counted(path: Path) -> int:
        loads.append(read_number(path))
        return loads[-1]

    reloading = Reloading(number, counted, what="number")
    assert reloading.refresh() is None
    write(number, "2")
    outcome = reloading.refresh()
    assert isinstance(outcome, Reloaded)
    assert (outcome.previous, outcome.value) == (1, 2)
    assert reloading.current() == 2
    assert reloading.refresh() is None
    assert loads == [1, 2]


def test_a_bad_file_keeps_the_last_good_version_and_logs_one_error(
    number: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reloading = Reloading(number, read_number, what="number", version=str)
    write(number, "two")
    with caplog.at_level(logging.WARNING, logger="proctor.reloading"):
        outcome = reloading.refresh()
        assert reloading.refresh() is None, "not retried until the file changes again"
    assert isinstance(outcome, Refused) and isinstance(outcome.error, InputError)
    assert outcome.serving == 1 and reloading.current() == 1
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        f"number change REJECTED, still serving 1 ({number}):\n{number}: 'two' is not a number"
    )
    write(number, "3")
    assert isinstance(reloading.refresh(), Reloaded)
    assert reloading.current() == 3


def test_any_failure_keeps_the_last_good_version(number: Path) -> None:
    def fragile(path: Path) -> int:
        return int(path.read_text())  # ValueError, not a ProctorError

    reloading = Reloading(number, fragile, what="number")
    write(number, "x")
    outcome = reloading.refresh()
    assert isinstance(outcome, Refused) and isinstance(outcome.error, ValueError)
    assert reloading.current() == 1


def test_a_deleted_file_is_a_change_its_loader_answers(number: Path) -> None:
    strict = Reloading(number, read_number, what="number")
    lenient = Reloading(number, lambda p: read_number(p) if p.exists() else 0, what="number")
    number.unlink()
    gone = strict.refresh()
    assert isinstance(gone, Refused) and isinstance(gone.error, FileNotFoundError)
    assert strict.current() == 1
    assert isinstance(lenient.refresh(), Reloaded) and lenient.current() == 0
    write(number, "5")
    assert isinstance(strict.refresh(), Reloaded) and strict.current() == 5


def test_a_start_with_a_bad_file_raises(number: Path) -> None:
    number.write_text("nope")
    with pytest.raises(InputError):
        Reloading(number, read_number, what="number")


def test_same_content_under_a_new_write_swaps_nothing(number: Path) -> None:
    reloading = Reloading(number, read_number, what="number", version=str)
    write(number, "1\n")
    assert reloading.refresh() is None
    write(number, "4")
    assert isinstance(reloading.refresh(), Reloaded)


def test_a_rewrite_restoring_mtime_and_size_is_seen(number: Path) -> None:
    reloading = Reloading(number, read_number, what="number")
    before = number.stat()
    write(number, "7")  # same size as "1"
    os.utime(number, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert number.stat().st_mtime_ns == before.st_mtime_ns
    assert isinstance(reloading.refresh(), Reloaded)
    assert reloading.current() == 7


def test_a_directory_counts_only_the_files_with_its_suffixes(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a")
    (tmp_path / "notes.txt").write_text("n")
    nested = tmp_path / "team"
    nested.mkdir()
    (nested / "b.yml").write_text("bb")
    seen = fingerprint(tmp_path, frozenset({".yaml", ".yml"}))
    assert [(name, size) for name, size, _, _ in seen] == [("a.yaml", 1), ("team/b.yml", 2)]

    reloading = Reloading(
        tmp_path,
        lambda d: sorted(p.name for p in d.rglob("*.y*ml")),
        what="files",
        suffixes=frozenset({".yaml", ".yml"}),
    )
    write(tmp_path / "notes.txt", "edited")
    assert reloading.refresh() is None
    write(nested / "c.yaml", "c")
    outcome = reloading.refresh()
    assert isinstance(outcome, Reloaded) and outcome.value == ["a.yaml", "b.yml", "c.yaml"]
    assert fingerprint(tmp_path / "missing") == ()
