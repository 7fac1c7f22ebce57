"""Timeouts and retries shared by the workflows' steps (pure constants: sandbox-safe)."""

from datetime import timedelta

from temporalio.common import RetryPolicy

STEP_TIMEOUT = timedelta(seconds=30)
"""One attempt of a Postgres-backed activity."""
STORE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30))
"""Steps backed by Postgres may wait out an outage; nothing executes without their rows."""
STORE_DEADLINE = timedelta(hours=1)
"""After that long the step fails for good, and the workflow fails closed."""
