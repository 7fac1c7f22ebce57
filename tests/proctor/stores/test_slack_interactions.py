"""Handled Slack interactions on real Postgres: a key is claimed once across replicas,
released when its handling failed, and forgotten after the memory window."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg

from proctor.stores.slack_interactions import SlackInteractionStore


def new_key() -> str:
    return f"block_actions:{uuid.uuid4().hex}"


async def test_a_key_is_claimed_once_however_many_replicas_race(pool: asyncpg.Pool) -> None:
    replicas = [SlackInteractionStore(pool) for _ in range(8)]
    key = new_key()

    claims = await asyncio.gather(*(r.claim(key, "block_actions") for r in replicas))

    assert sorted(claims) == [False] * 7 + [True]
    assert await replicas[0].claim(key, "block_actions") is False  # a later retry, too


async def test_a_forgotten_key_can_be_claimed_again(pool: asyncpg.Pool) -> None:
    store = SlackInteractionStore(pool)
    key, other = new_key(), new_key()
    assert await store.claim(key, "view_submission")
    assert await store.claim(other, "view_submission")

    await store.forget(key)

    assert await store.claim(key, "view_submission") is True
    assert await store.claim(other, "view_submission") is False  # only that key was released


async def test_keys_older_than_the_memory_are_forgotten(pool: asyncpg.Pool) -> None:
    """A week's memory: a key received eight days ago goes, one from six days ago stays."""
    store = SlackInteractionStore(pool)
    ages = {new_key(): days for days in (8, 6, 0)}
    for key, days in ages.items():
        await store.claim(key, "block_actions")
        await pool.execute(
            "UPDATE slack_interactions SET received_at = now() - $2::interval"
            " WHERE interaction_key = $1",
            key,
            timedelta(days=days),
        )

    assert await store.forget_older_than() >= 1

    assert [await store.claim(key, "block_actions") for key in ages] == [True, False, False]
