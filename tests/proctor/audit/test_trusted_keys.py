"""Which checkpoint keys a verifier trusts: pinned outside the database and the sink only."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.audit.keys import KeyFileError, LedgerKeys, public_pem, trusted_keys


def pem_of(keys: LedgerKeys, path: Path) -> Path:
    path.write_text(public_pem(keys.signing.public_key()))
    return path


def test_by_default_the_workers_own_key(tmp_path: Path) -> None:
    worker = LedgerKeys.load_or_create(tmp_path / "keys")
    pinned = trusted_keys(tmp_path / "keys", None)
    assert set(pinned.keys) == {worker.key_id} and "worker's key" in pinned.source


def test_no_key_dir_means_no_key_not_the_sinks(tmp_path: Path) -> None:
    sink_keys = tmp_path / "sink" / "keys"
    sink_keys.mkdir(parents=True)
    pem_of(LedgerKeys.generate(), sink_keys / "planted.pem")
    assert trusted_keys(tmp_path / "keys", None).keys == {}


def test_the_setting_replaces_the_workers_key(tmp_path: Path) -> None:
    LedgerKeys.load_or_create(tmp_path / "keys")
    old, new = LedgerKeys.generate(), LedgerKeys.generate()
    setting = f"{pem_of(old, tmp_path / 'old.pem')} , {pem_of(new, tmp_path / 'new.pem')},"
    assert set(trusted_keys(tmp_path / "keys", setting).keys) == {old.key_id, new.key_id}


def test_given_keys_replace_the_setting(tmp_path: Path) -> None:
    one, two = LedgerKeys.generate(), LedgerKeys.generate()
    pinned = trusted_keys(
        tmp_path / "keys",
        str(pem_of(one, tmp_path / "one.pem")),
        [pem_of(two, tmp_path / "two.pem")],
    )
    assert set(pinned.keys) == {two.key_id} and pinned.source == "--trusted-key"


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "PROCTOR_AUDIT_TRUSTED_KEYS {path}: no such file"),
        ("not a key", "{path}: not a PEM public key"),
    ],
)
def test_a_bad_pinned_key_names_the_setting_and_the_file(
    tmp_path: Path, content: str | None, words: str
) -> None:
    path = tmp_path / "k.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KeyFileError) as raised:
        trusted_keys(tmp_path / "keys", str(path))
    assert str(raised.value).startswith(words.format(path=path))
    assert "\n" not in str(raised.value)
