"""Naming the first bad row from a checkpoint's witness, pure.

A checkpoint keeps a short content digest of every row it covers. Compared with the digests of
the rows now there, it says where a rewrite starts and what it was, even when every hash after
the change was recomputed so that the links verify.
"""

from __future__ import annotations

from collections.abc import Sequence

from proctor.audit.findings import FindingKind


def locate(
    witness: Sequence[str],
    actual: Sequence[str],
    first_seq: int,
) -> tuple[int, FindingKind, str]:
    """Compare a signed segment's witness with the rows now there: first bad seq and kind."""
    size = len(witness)

    def at(items: Sequence[str], index: int) -> str | None:
        return items[index] if 0 <= index < len(items) else None

    index = next((k for k in range(size) if at(actual, k) != witness[k]), None)
    if index is None:
        return (
            first_seq + size - 1,
            FindingKind.CHAIN_RECOMPUTED,
            "every row still says what was signed, but the hashes were recomputed",
        )
    seq = first_seq + index
    if index >= len(actual):
        return seq, FindingKind.TAIL_TRUNCATED, f"the rows signed from seq {seq} on are gone"
    if index == 0 and not any(a == w for a, w in zip(actual, witness, strict=False)):
        return (
            seq,
            FindingKind.TABLE_REWRITTEN,
            f"no row of the signed segment {first_seq}.."
            f"{first_seq + size - 1} matches what was signed: rewritten wholesale",
        )
    here, after = at(actual, index), at(actual, index + 1)
    if here == at(witness, index + 1) and after == witness[index]:
        return (
            seq,
            FindingKind.ROWS_SWAPPED,
            f"rows {seq} and {seq + 1} trade places (hashes recomputed)",
        )
    if after == witness[index]:
        return (
            seq,
            FindingKind.ROW_INSERTED,
            f"a row that was never signed sits at seq {seq} "
            "(later rows renumbered, hashes recomputed)",
        )
    if here == at(witness, index + 1):
        return (
            seq,
            FindingKind.ROW_DELETED,
            f"the row signed as seq {seq} is gone (later rows renumbered, hashes recomputed)",
        )
    return (
        seq,
        FindingKind.CONTENT_EDITED,
        "the row's content differs from what was signed (hashes recomputed)",
    )
