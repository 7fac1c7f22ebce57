"""Which tools to leave out of `tools/list`: those policy denies this agent whatever the
arguments (an unconditional deny rule, or no rule that could allow or escalate them).

A convenience for the model, never a control: a hidden tool called anyway is still governed,
and denied, by the worker. So when the policy or the agent's record cannot be read here, nothing
is hidden (logged once) rather than the gateway refusing to start.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from proctor.errors import ProctorError
from proctor.models import AgentInfo
from proctor.policy.decide import PolicyEngine
from proctor.policy.loader import load_policy_dir

log = logging.getLogger(__name__)

RELOAD_SECONDS = 2.0
"""How stale the policy a listing sees may be (the worker looks as often by default)."""


class DeniedTools:
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
