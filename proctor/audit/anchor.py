"""A point a verification proved, from which the next one may resume."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    """A verified point: verification can resume after it. `sink_lines`/`sink_head`: how many
    lines the sink had then and the digest of the last, so lines lost since are noticed."""

    seq: int
    hash: str
    sink_lines: int = 0
    sink_head: str = ""
