"""Writing a key to disk: create-only, readable by its owner alone, on disk before it is used.

Every key Proctor makes (an agent's, an approver's, a channel's, the ledger's, the payload
ring's) goes through `write_new_secret`, so none is ever overwritten and none is ever briefly
readable by others between creation and a later chmod.
"""

from __future__ import annotations

import os
from pathlib import Path

from proctor.errors import ConflictError


class SecretFileExists(ConflictError, FileExistsError):
    """A key file is already at that path; keys are never overwritten."""


def write_new_secret(path: Path, data: bytes) -> None:
    """Create `path` (mode 0600) holding `data`, synced; refuse if anything is there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SecretFileExists(f"{path}: already exists (keys are never overwritten)") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
