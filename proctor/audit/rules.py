"""What the policy set says about the audit log, merged into one value the ledger applies.

Redaction is conservative: a field named sensitive (or personal) in any file is treated so for
every agent, and the longest retention any file asks for is kept; the chain is one sequence, so
it can only be pruned as a prefix that every policy agrees has expired.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_RETENTION_DAYS = 2555  # seven years
Level = Literal["minimal", "standard", "full"]
_LEVEL_ORDER: dict[Level, int] = {"minimal": 0, "standard": 1, "full": 2}


@dataclass(frozen=True)
class AuditRules:
    sensitive_fields: frozenset[str] = frozenset()
    personal_fields: frozenset[str] = frozenset()
    data_subjects: tuple[str, ...] = ()
    detectors: frozenset[str] = frozenset({"email", "card", "ssn", "phone", "secret"})
    retention_days: int = DEFAULT_RETENTION_DAYS
    levels: dict[str, Level] = field(default_factory=dict)
    """Per agent id; agents not listed get `default_level`."""
    default_level: Level = "full"

    def level_for(self, agent_id: str | None) -> Level:
        return self.levels.get(agent_id or "", self.default_level)


@dataclass(frozen=True)
class AuditSource:
    """One policy file's audit section, reduced to what merging needs."""

    agents: tuple[str, ...] | None  # None: every agent
    level: Level
    level_set: bool
    retention: int | None
    sensitive_fields: tuple[str, ...]
    personal_fields: tuple[str, ...]
    data_subject: str | None
    detectors: tuple[str, ...]


def merge(sources: Iterable[AuditSource]) -> AuditRules:
    items = list(sources)
    sensitive = frozenset(f.lower() for s in items for f in s.sensitive_fields)
    personal = frozenset(f.lower() for s in items for f in s.personal_fields)
    subjects = tuple(dict.fromkeys(s.data_subject for s in items if s.data_subject))
    detectors = (
        frozenset(d for s in items for d in s.detectors) if items else AuditRules().detectors
    )
    retentions = [s.retention for s in items if s.retention is not None]
    default_level: Level = "full"
    levels: dict[str, Level] = {}
    for source in items:
        if not source.level_set:
            continue
        if source.agents is None:
            default_level = _lower(default_level, source.level)
        else:
            for agent in source.agents:
                levels[agent] = _lower(levels.get(agent, "full"), source.level)
    return AuditRules(
        sensitive_fields=sensitive,
        personal_fields=personal,
        data_subjects=subjects,
        detectors=detectors,
        retention_days=max(retentions) if retentions else DEFAULT_RETENTION_DAYS,
        levels={a: _lower(lvl, default_level) for a, lvl in levels.items()},
        default_level=default_level,
    )


def _lower(a: Level, b: Level) -> Level:
    """The stricter (records less) of two levels."""
    return a if _LEVEL_ORDER[a] <= _LEVEL_ORDER[b] else b
