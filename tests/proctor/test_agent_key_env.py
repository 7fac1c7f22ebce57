"""`AgentKey.from_env()`: the agent's key from PROCTOR_AGENT_KEY, as a path or as the key
file's text, decrypted with PROCTOR_KEY_PASSPHRASE (a str) as `proctor agent create` encrypts
it; each mistake one line naming the variable or file, never the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import proctor
from proctor import AgentKey, AgentKeyError

KEY = AgentKey.generate("refunds-agent")


def same(key: AgentKey) -> bool:
    return (key.agent_id, key.public_key_pem) == (KEY.agent_id, KEY.public_key_pem)


def test_a_path_is_read_and_decrypted_with_the_passphrase(tmp_path: Path) -> None:
    path = KEY.save(tmp_path / "agent.pem", passphrase=b"correct horse")

    key = AgentKey.from_env(
        {"PROCTOR_AGENT_KEY": str(path), "PROCTOR_KEY_PASSPHRASE": "correct horse"}
    )

    assert same(key)


def test_the_key_files_text_itself_is_taken_as_it_is(tmp_path: Path) -> None:
    text = KEY.save(tmp_path / "agent.pem").read_text()

    assert same(AgentKey.from_env({"PROCTOR_AGENT_KEY": text}))


def test_the_process_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = KEY.save(tmp_path / "agent.pem")
    monkeypatch.setenv("PROCTOR_AGENT_KEY", str(path))
    monkeypatch.delenv("PROCTOR_KEY_PASSPHRASE", raising=False)

    assert same(proctor.AgentKey.from_env())


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({}, "PROCTOR_AGENT_KEY is not set"),
        ({"PROCTOR_AGENT_KEY": "  "}, "PROCTOR_AGENT_KEY is not set"),
        ({"PROCTOR_AGENT_KEY": "/nowhere/agent.pem"}, "/nowhere/agent.pem: cannot read key file"),
        ({"PROCTOR_AGENT_KEY": "-----BEGIN nonsense"}, "PROCTOR_AGENT_KEY: no 'Proctor-Agent:"),
    ],
)
def test_a_mistake_is_one_line(environ: dict[str, str], says: str) -> None:
    with pytest.raises(AgentKeyError) as raised:
        AgentKey.from_env(environ)

    assert str(raised.value).startswith(says) and "\n" not in str(raised.value)


def test_an_encrypted_key_without_its_passphrase_says_so_without_the_key(tmp_path: Path) -> None:
    text = KEY.save(tmp_path / "agent.pem", passphrase=b"correct horse").read_text()

    with pytest.raises(AgentKeyError) as raised:
        AgentKey.from_env({"PROCTOR_AGENT_KEY": text})
    with pytest.raises(AgentKeyError, match="undecryptable"):
        AgentKey.from_env({"PROCTOR_AGENT_KEY": text, "PROCTOR_KEY_PASSPHRASE": "wrong"})

    assert str(raised.value).startswith("PROCTOR_AGENT_KEY: ")
    assert "give the passphrase" in str(raised.value) and "BEGIN" not in str(raised.value)


def test_every_public_model_and_error_is_exported_from_proctor() -> None:
    import proctor.errors
    import proctor.models

    exported = set(proctor.__all__)
    errors = {
        name
        for name, value in vars(proctor.errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == "proctor.errors"
    }
    models = {
        name
        for name in proctor.models.__all__
        if isinstance(getattr(proctor.models, name), type)
        and issubclass(getattr(proctor.models, name), proctor.models.Frozen)
        and name != "Frozen"
    }
    assert errors - exported == set()
    assert models - exported == set()
    assert all(getattr(proctor, name) is not None for name in exported)
