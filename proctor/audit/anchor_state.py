"""Where the last successful verification ended, so the next one can start there."""

from __future__ import annotations

import json
from pathlib import Path

from proctor.audit.verify import Anchor

STATE_FILE = "audit-verified.json"


def load_anchor(state_dir: Path, database: str) -> Anchor | None:
    """The anchor recorded for this database (by its redacted DSN), if any."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
        entry = data[database]
        return Anchor(int(entry["seq"]), str(entry["hash"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_anchor(state_dir: Path, database: str, anchor: Anchor) -> None:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[database] = {"seq": anchor.seq, "hash": anchor.hash}
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    temporary.replace(path)
