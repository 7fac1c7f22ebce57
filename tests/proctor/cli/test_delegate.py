"""`proctor delegate`: a human roots a chain with their vote key, an agent extends it with its
own (encrypted) key, and every mistake is one line."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proctor.approvals.keys import VoteSigner, provisioned_key_path
from proctor.delegation import chain_refusal, load_chain
from proctor.models import DelegationLink, ExecutionMode, ExecutionSpec
from proctor.signing import AgentKey
from tests.helpers.cli import run

PASSPHRASE = "correct horse"
ALICE = VoteSigner.generate(approver="alice")
PLANNER = AgentKey.generate("planner")
REFUNDS = AgentKey.generate("refunds")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """alice's vote key where `proctor up` provisions it; the planner's key encrypted."""
    state = tmp_path / "state"
    ALICE.save(provisioned_key_path(state, "alice"))
    PLANNER.save(tmp_path / "planner.pem", passphrase=PASSPHRASE.encode())
    return {"PROCTOR_STATE_DIR": str(state), "PROCTOR_KEY_PASSPHRASE": PASSPHRASE}


def keys_of(link: DelegationLink) -> tuple[str, ...]:
    return {"alice": (ALICE.public_key_pem,), "agent:planner": (PLANNER.public_key_pem,)}.get(
        link.principal, ()
    )


def alice_grants(env: dict[str, str], cwd: Path, *extra: str) -> Path:
    args = ["delegate", "--to", "planner", "--actions", "refund_*", "--actions", "read_*"]
    done = run([*args, "--expires", "1h", "--as", "alice", "-o", "root.json", *extra], env, cwd)
    assert done.returncode == 0, done.stderr
    assert "alice → agent:planner: refund_*, read_*" in done.stdout
    return cwd / "root.json"


def test_a_human_roots_and_an_agent_extends_a_chain_that_verifies(
    env: dict[str, str], tmp_path: Path
) -> None:
    root = alice_grants(env, tmp_path)
    args = ["delegate", "--agent-key", "planner.pem", "--chain", str(root), "--to", "refunds"]
    done = run([*args, "--actions", "refund_small", "--expires", "7d"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    chain = load_chain(_stdout_file(tmp_path, done.stdout))
    assert [link.principal for link in chain] == ["alice", "agent:planner"]
    assert chain[1].expires_at == chain[0].expires_at, "7d cut to the root's hour"
    assert "chain of 2" in done.stderr
    request = REFUNDS.new_request(
        "refund_small",
        {},
        ExecutionSpec(mode=ExecutionMode.HANDLER),
        on_behalf_of="alice",
        delegation=chain,
    )
    assert chain_refusal(request, keys_of=keys_of, max_depth=3, at=datetime.now(UTC)) is None


def _stdout_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stdout.json"
    path.write_text(text)
    return path


def test_an_explicit_vote_key_is_used(env: dict[str, str], tmp_path: Path) -> None:
    bob = VoteSigner.generate(approver="bob")
    bob.save(tmp_path / "bob.pem")
    args = ["delegate", "--to", "planner", "--actions", "*", "--expires", "15m"]
    done = run([*args, "--as", "bob", "--key", "bob.pem"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    (link,) = load_chain(_stdout_file(tmp_path, done.stdout))
    assert (link.delegator, link.key_id) == ("bob", bob.key_id)


GRANT = ["--to", "refunds", "--actions", "refund_small", "--expires", "1h"]
MISTAKES = {
    "both signers": ([*GRANT, "--as", "alice", "--agent-key", "planner.pem"], "not both"),
    "no signer": (GRANT, "give --as APPROVER"),
    "bad duration": (
        ["--to", "x", "--actions", "*", "--expires", "soon", "--as", "alice"],
        "--expires:",
    ),
    "bad pattern": (
        ["--to", "x", "--actions", "a b", "--expires", "1h", "--as", "alice"],
        "actions",
    ),
    "bad agent id": (
        ["--to", "a b", "--actions", "*", "--expires", "1h", "--as", "alice"],
        "delegate",
    ),
    "missing key": ([*GRANT, "--as", "carol"], "no vote key for carol"),
    "someone else's key": (
        [*GRANT, "--as", "bob", "--key", "{state}/approver-keys/alice.pem"],
        "of alice, not of bob",
    ),
    "key without --as": (
        [*GRANT, "--agent-key", "planner.pem", "--key", "x.pem"],
        "--key goes with --as",
    ),
    "human extends": ([*GRANT, "--as", "alice", "--chain", "root.json"], "only the root"),
    "widened": (
        [
            "--to",
            "refunds",
            "--actions",
            "*",
            "--expires",
            "1h",
            "--agent-key",
            "planner.pem",
            "--chain",
            "root.json",
        ],
        "'*' is not within",
    ),
    "missing chain": (
        [*GRANT, "--agent-key", "planner.pem", "--chain", "none.json"],
        "none.json: cannot read",
    ),
    "garbage chain": (
        [*GRANT, "--agent-key", "planner.pem", "--chain", "planner.pem"],
        "planner.pem: not a delegation chain",
    ),
    "not the chain's agent": (
        [*GRANT, "--agent-key", "other.pem", "--chain", "root.json"],
        "only it extends it",
    ),
    "unwritable output": (
        [*GRANT, "--as", "alice", "-o", "no/such/dir.json"],
        "cannot write the chain",
    ),
}


@pytest.fixture(scope="module")
def root_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice's grant to the planner, made once by the real command for every mistake below."""
    folder = tmp_path_factory.mktemp("root-chain")
    state = folder / "state"
    ALICE.save(provisioned_key_path(state, "alice"))
    return alice_grants({"PROCTOR_STATE_DIR": str(state)}, folder)


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_is_one_line(
    env: dict[str, str], tmp_path: Path, root_chain: Path, mistake: str
) -> None:
    shutil.copy(root_chain, tmp_path / "root.json")
    AgentKey.generate("other").save(tmp_path / "other.pem", passphrase=PASSPHRASE.encode())
    args, expected = MISTAKES[mistake]
    options = [o.format(state=env["PROCTOR_STATE_DIR"]) for o in args]
    done = run(["delegate", *options], env, tmp_path)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr, done.stderr


def test_a_wrong_passphrase_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    args = ["delegate", "--agent-key", "planner.pem", "--to", "refunds", "--actions", "*"]
    done = run([*args, "--expires", "1h"], {**env, "PROCTOR_KEY_PASSPHRASE": "wrong"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: planner.pem") and done.stderr.count("\n") == 1
