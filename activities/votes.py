"""vote_keys: the trusted public keys that may sign one vote, read when the vote arrives.

The workflow verifies the signature itself (pure code); this activity only brings the keys
from the trusted key directory into history, so rotation and revocation take effect at once
and a replay judges with the keys the original run saw.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity

from proctor.approvals.keys import VoteKeyDirectory
from proctor.contract import VOTE_KEYS
from proctor.models import VoteKeyQuery, VoteKeys


class VoteKeyActivities:
    def __init__(self, directory: Callable[[], VoteKeyDirectory]) -> None:
        self.directory = directory

    @activity.defn(name=VOTE_KEYS)
    async def vote_keys(self, query: VoteKeyQuery) -> VoteKeys:
        return self.directory().keys_for(query.approver, query.channel)
