"""Where the last successful verification ended, kept in the verifier's own state directory.

That directory is as trusted as the key directory beside it, so what is kept here is a memory
the database administrator and the sink's writers cannot edit: the verified row (so the next run
starts there) and how much of the sink it had seen (so lines lost from its end are noticed).
"""

from __future__ import annotations

import json
from pathlib import Path

from proctor.audit.anchor import Anchor

STATE_FILE = "audit-verified.json"


def load_anchor(state_dir: Path, database: str, sink: Path | None = None) -> Anchor | None:
    """The anchor recorded for this database (by its redacted DSN), if any; what it saw of
    the sink only if it was the same sink."""
    try:
        entry = json.loads((state_dir / STATE_FILE).read_text())[database]
        anchor = Anchor(int(entry["seq"]), str(entry["hash"]))
        if sink is not None and entry.get("sink") == str(sink.resolve()):
            anchor = Anchor(
                anchor.seq, anchor.hash, int(entry["sink_lines"]), str(entry["sink_head"])
            )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return anchor


def save_anchor(state_dir: Path, database: str, anchor: Anchor, sink: Path | None = None) -> None:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    entry: dict[str, object] = {"seq": anchor.seq, "hash": anchor.hash}
    if sink is not None:
        entry.update(
            sink=str(sink.resolve()), sink_lines=anchor.sink_lines, sink_head=anchor.sink_head
        )
    data[database] = entry
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    temporary.replace(path)
