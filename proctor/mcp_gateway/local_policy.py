"""The gateway's local reading of the policy, for two conveniences and never a control:

- which tools to leave out of `tools/list`: those policy denies this agent whatever the
  arguments (an unconditional deny rule, or no rule that could allow or escalate them);
- whether a call will likely be allowed outright, so the gateway may ask for the permission to
  run it in the same round trip that submits it (`calls.GovernedCalls`).

The worker decides every call all the same: a hidden tool called anyway is denied there, and a
wrong guess only costs time. So when the policy or the agent's record cannot be read here,
nothing is hidden and nothing guessed (logged once) rather than the gateway refusing to start.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from proctor.errors import ProctorError
from proctor.models import AgentInfo, Effect, PolicyQuery
from proctor.policy.decide import PolicyEngine
from proctor.policy.loader import load_policy_dir
from proctor.policy.reload import POLICY_SUFFIXES
from proctor.reloading import Reloading

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
"""How often the files are looked at (the worker looks as often by default); they are loaded
again only when they changed, and a change that does not load leaves the last good set."""


class LocalPolicy:
    """The worker's policy directory, hot-reloaded as the worker reloads it, read for one
    agent."""

    def __init__(self, files: Reloading[PolicyEngine], agent: AgentInfo) -> None:
        self._files = files
        self.agent = agent
        self._looked_at = time.monotonic()

    @classmethod
    def read(cls, policy_dir: Path, agent: AgentInfo) -> LocalPolicy | None:
        """The policy at `policy_dir` for `agent`; None (logged) if it does not load here."""
        try:
            files = Reloading(
                policy_dir,
                lambda directory: PolicyEngine(load_policy_dir(directory)),
                what="policy (gateway)",
                suffixes=POLICY_SUFFIXES,
                version=lambda engine: engine.version,
            )
        except ProctorError as exc:
            log.warning(
                "no tool hidden, every call decided first: the policy does not load: %s", exc
            )
            return None
        return cls(files, agent)

    def hides(self, action: str) -> bool:
        return self._current().always_denies(self.agent, action)

    def likely_allows(self, action: str, params: dict[str, Any]) -> bool:
        """Would the policy read here allow this call outright (no approval)?"""
        query = PolicyQuery(agent=self.agent, action=action, params=params)
        try:
            return self._current().decide(query).effect is Effect.ALLOW
        except ProctorError:
            return False

    def _current(self) -> PolicyEngine:
        now = time.monotonic()
        if now - self._looked_at >= REFRESH_SECONDS:
            self._looked_at = now
            self._files.refresh()
        return self._files.current()
