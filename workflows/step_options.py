"""Timeouts and retries shared by the workflows' steps (pure constants: sandbox-safe)."""

from datetime import timedelta

from temporalio.common import RetryPolicy

STEP_TIMEOUT = timedelta(seconds=30)
"""One attempt of a Postgres-backed activity."""
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
"""Steps backed by Postgres may wait out an outage; nothing executes without their rows."""
STORE_DEADLINE = timedelta(hours=1)
"""After that long the step fails for good, and the workflow fails closed."""

NOTIFY_TIMEOUT = timedelta(seconds=60)
"""One attempt of a Slack call (the client itself waits out a few 429s and 5xx)."""
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=["SlackUnusable"],
)
NOTIFY_DEADLINE = timedelta(minutes=30)
"""After that long a notification is given up (and audited as failed); votes still count."""
NOTIFY_SETTLE = timedelta(seconds=60)
"""At a decision, how long to let notifications in flight land before closing the messages."""
CLOSE_GRACE = timedelta(minutes=5)
"""How long the workflow lingers after its outcome so the messages can show it."""
VOTE_KEYS_TIMEOUT = timedelta(seconds=10)
"""Reading a vote's trusted keys from the key directory (local files)."""
