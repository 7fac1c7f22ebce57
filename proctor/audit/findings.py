"""What verification can find wrong with the ledger, each with the seq where it starts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FindingKind(StrEnum):
    """What is wrong, named where the damage is detected (never read back from a message);
    the values are what JSON reports carry."""

    # rows
    CONTENT_EDITED = "content_edited"
    ROW_DELETED = "row_deleted"
    ROW_INSERTED = "row_inserted"
    ROWS_SWAPPED = "rows_swapped"
    TAIL_TRUNCATED = "tail_truncated"
    TABLE_REWRITTEN = "table_rewritten"
    CHAIN_RECOMPUTED = "chain_recomputed"
    LINK_BROKEN = "link_broken"
    # signed points in the database
    CHECKPOINT_FORGED = "checkpoint_forged"
    CHECKPOINT_MISSING = "checkpoint_missing"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    # the sink
    SINK_FORGED = "sink_forged"
    SINK_CORRUPT = "sink_corrupt"
    SINK_MISSING = "sink_missing"
    SINK_MISMATCH = "sink_mismatch"
    SINK_CHAIN_BROKEN = "sink_chain_broken"
    SINK_TRUNCATED = "sink_truncated"
    SINK_REWRITTEN = "sink_rewritten"


@dataclass(frozen=True)
class Finding:
    seq: int | None
    kind: FindingKind
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "ledger"
        return f"{where}: {self.kind.replace('_', ' ')}: {self.detail}"
