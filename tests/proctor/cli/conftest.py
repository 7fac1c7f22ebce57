from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment


@pytest.fixture
def cli_env(database_dsn: str, dev_server: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    """What the command needs to find the test's Postgres and Temporal dev server."""
    return {
        "PROCTOR_DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "PROCTOR_STATE_DIR": str(tmp_path / "state"),
    }
