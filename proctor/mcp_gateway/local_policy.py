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

log = logging.getLogger(__name__)

RELOAD_SECONDS = 2.0
"""How stale the policy a listing sees may be (the worker looks as often by default)."""


class LocalPolicy:
    """Reads the worker's policy directory (re-read at most every RELOAD_SECONDS) and answers
    for one agent."""

    def __init__(self, policy_dir: Path, agent: AgentInfo | None) -> None:
        self.policy_dir = policy_dir
        self.agent = agent
        self._engine: PolicyEngine | None = None
        self._loaded_at = float("-inf")
        self._warned = False

    def hides(self, action: str) -> bool:
        if self.agent is None:
            return False
        engine = self._current()
        return engine is not None and engine.always_denies(self.agent, action)

    def likely_allows(self, action: str, params: dict[str, Any]) -> bool:
        """Would the policy read here allow this call outright (no approval)?"""
        if self.agent is None:
            return False
        engine = self._current()
        if engine is None:
            return False
        try:
            decision = engine.decide(PolicyQuery(agent=self.agent, action=action, params=params))
        except ProctorError:
            return False
        return decision.effect is Effect.ALLOW

    def _current(self) -> PolicyEngine | None:
        now = time.monotonic()
        if now - self._loaded_at >= RELOAD_SECONDS:
            self._loaded_at = now
            try:
                self._engine = PolicyEngine(load_policy_dir(self.policy_dir))
                self._warned = False
            except ProctorError as exc:
                if not self._warned:
                    log.warning("hiding no tools: the policy does not load: %s", exc)
                    self._warned = True
                self._engine = None
        return self._engine
