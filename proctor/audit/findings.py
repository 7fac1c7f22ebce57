"""What verification can find wrong with the ledger, each with the seq where it starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    # rows
    "content_edited",
    "row_deleted",
    "row_inserted",
    "rows_swapped",
    "tail_truncated",
    "table_rewritten",
    "chain_recomputed",
    "link_broken",
    # signed points in the database
    "checkpoint_forged",
    "checkpoint_missing",
    "checkpoint_mismatch",
    # the sink
    "sink_forged",
    "sink_corrupt",
    "sink_missing",
    "sink_mismatch",
    "sink_chain_broken",
    "sink_truncated",
    "sink_rewritten",
]


@dataclass(frozen=True)
class Finding:
    seq: int | None
    kind: Kind
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "ledger"
        return f"{where}: {self.kind.replace('_', ' ')}: {self.detail}"
