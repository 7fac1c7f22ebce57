"""vote_keys in an activity context: the trusted keys of one vote, read from the key directory
when the vote arrives, so they land in history and a rotation counts at once."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import ActivityEnvironment

from proctor.approvals.keys import VoteKeyDirectory, VoteSigner
from proctor.models import VoteKeyQuery, VoteKeys
from proctor_server.activities.votes import VoteKeyActivities

ALICE = "alice@example.com"


async def keys_for(activities: VoteKeyActivities, approver: str, channel: str) -> VoteKeys:
    query = VoteKeyQuery(approver=approver, channel=channel)
    return await ActivityEnvironment().run(activities.vote_keys, query)


async def test_the_approvers_and_the_channels_registered_keys_are_brought(tmp_path: Path) -> None:
    directory = VoteKeyDirectory(tmp_path)
    alice = VoteSigner.generate(approver=ALICE)
    slack = VoteSigner.generate(channel="slack")
    directory.register_approver(ALICE, alice.public_key_pem)
    directory.register_channel("slack", slack.public_key_pem)
    keys = await keys_for(VoteKeyActivities(lambda: directory), ALICE, "slack")
    assert keys == VoteKeys(approver=(alice.public_key_pem,), channel=(slack.public_key_pem,))


async def test_an_unknown_approver_or_channel_brings_no_key(tmp_path: Path) -> None:
    directory = VoteKeyDirectory(tmp_path)
    directory.register_approver(ALICE, VoteSigner.generate(approver=ALICE).public_key_pem)
    keys = await keys_for(VoteKeyActivities(lambda: directory), "mallory@example.com", "cli")
    assert keys == VoteKeys()


async def test_a_key_registered_after_the_first_vote_counts_for_the_next(tmp_path: Path) -> None:
    directory = VoteKeyDirectory(tmp_path)
    activities = VoteKeyActivities(lambda: directory)
    old, new = VoteSigner.generate(approver=ALICE), VoteSigner.generate(approver=ALICE)
    directory.register_approver(ALICE, old.public_key_pem)
    before = await keys_for(activities, ALICE, "cli")
    directory.register_approver(ALICE, new.public_key_pem)
    after = await keys_for(activities, ALICE, "cli")
    assert before.approver == (old.public_key_pem,)
    assert set(after.approver) == {old.public_key_pem, new.public_key_pem}


async def test_the_directory_in_force_is_asked_each_time(tmp_path: Path) -> None:
    """The worker hands a callable: a swapped directory (a reload) is the one read."""
    first, second = VoteKeyDirectory(tmp_path / "a"), VoteKeyDirectory(tmp_path / "b")
    signer = VoteSigner.generate(approver=ALICE)
    second.register_approver(ALICE, signer.public_key_pem)
    in_force = [first]
    activities = VoteKeyActivities(lambda: in_force[0])
    assert await keys_for(activities, ALICE, "cli") == VoteKeys()
    in_force[0] = second
    assert (await keys_for(activities, ALICE, "cli")).approver == (signer.public_key_pem,)
