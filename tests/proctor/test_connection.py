"""An agent's connection settings: read from the environment without pydantic-settings, yet
exactly as the server's `ProctorSettings` reads them (same variables, defaults, precedence)."""

from __future__ import annotations

import ctypes
import json
import os
import threading
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from proctor import payload_keys
from proctor.codec import EncryptionCodec
from proctor.connection import (
    connect_agent,
    exit_after_native_threads,
    native_threads_in_python,
    wait_for_native_threads,
)
from proctor.errors import ConfigurationError
from proctor.payload_keys import PayloadKeysMissing
from proctor.settings import ProctorSettings
from proctor.temporal import (
    ConnectionSettings,
    NotConfigured,
    connection_settings,
    environment_variables,
    temporal_address,
)

ENVIRONMENTS = [
    {},
    {
        "TEMPORAL_ADDRESS": "temporal.internal:7233",
        "PROCTOR_TEMPORAL_ADDRESS": "ignored:1",
        "PROCTOR_TEMPORAL_NAMESPACE": "agents",
        "PROCTOR_TASK_QUEUE": "governed",
        "PROCTOR_TEMPORAL_PORT": "7300",
        "PROCTOR_STATE_DIR": "/var/lib/proctor",
        "PROCTOR_PAYLOAD_KEY_DIR": "/etc/proctor/payload-keys",
    },
    {"PROCTOR_TEMPORAL_ADDRESS": "second:7233", "proctor_task_queue": "lower-case"},
    {"TEMPORAL_NAMESPACE": "first", "PROCTOR_TEMPORAL_NAMESPACE": "second"},
]


def clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("PROCTOR_", "TEMPORAL_")):
            monkeypatch.delenv(name)


def test_the_server_inherits_every_connection_setting_unchanged() -> None:
    for field, info in ConnectionSettings.model_fields.items():
        server = ProctorSettings.model_fields[field]
        assert (server.annotation, server.default, server.validation_alias) == (
            info.annotation,
            info.default,
            info.validation_alias,
        ), field


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_both_sides_read_the_same_values(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_environment(monkeypatch)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    agent = connection_settings()
    server = ProctorSettings()
    for field in ConnectionSettings.model_fields:
        assert getattr(agent, field) == getattr(server, field), field
    assert temporal_address(agent) == temporal_address(server)


def test_variables_are_named_as_documented() -> None:
    assert environment_variables("temporal_address") == (
        "TEMPORAL_ADDRESS",
        "PROCTOR_TEMPORAL_ADDRESS",
    )
    assert environment_variables("payload_key_dir") == ("PROCTOR_PAYLOAD_KEY_DIR",)


def test_a_bad_value_is_one_line_naming_its_variable_not_the_value() -> None:
    with pytest.raises(NotConfigured) as caught:
        connection_settings({"PROCTOR_TEMPORAL_PORT": "seventy-two-thirty-three"})
    message = str(caught.value)
    assert message.startswith("PROCTOR_TEMPORAL_PORT: ")
    assert "seventy" not in message and "\n" not in message
    assert isinstance(caught.value, ConfigurationError)


async def test_connect_agent_finds_the_stack_and_fails_closed_without_its_ring(
    dev_server: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No address given: the one `proctor up` recorded in the state dir's stack.json; that
    stack encrypts history, so without the ring there is no connection."""
    clear_environment(monkeypatch)
    address = dev_server.client.service_client.config.target_host
    state = tmp_path / "state"
    state.mkdir()
    stack = {"temporal_address": address, "database_url": "postgresql://x/y", "pid": 1}
    (state / "stack.json").write_text(json.dumps(stack))
    monkeypatch.setenv("PROCTOR_STATE_DIR", str(state))
    monkeypatch.setenv("PROCTOR_TASK_QUEUE", "from-the-environment")
    with pytest.raises(PayloadKeysMissing, match="embedded stack"):
        await connect_agent()
    payload_keys.create(state / "payload-keys")

    connection = await connect_agent()

    assert connection.task_queue == "from-the-environment"
    assert connection.temporal.service_client.config.target_host == address
    assert isinstance(connection.temporal.data_converter.payload_codec, EncryptionCodec)
    assert exit_after_native_threads.cache_info().currsize == 1  # the exit hook is registered


class NativeThread:
    """A thread Python did not start (as Temporal's Tokio threads are) that enters Python and
    stays there until released: made with pthread_create, running a ctypes callback, which
    takes a Python thread state on entry and gives it back on return."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.callback = PTHREAD_START(self._run)
        self.handle = ctypes.c_ulong()

    def _run(self, _argument: int | None) -> int | None:
        self.entered.set()
        self.release.wait(10)
        return None

    def start(self) -> None:
        assert LIBC.pthread_create(ctypes.byref(self.handle), None, self.callback, None) == 0
        assert self.entered.wait(10)

    def finish(self) -> None:
        self.release.set()
        assert LIBC.pthread_join(self.handle, None) == 0


LIBC = ctypes.CDLL(None)
PTHREAD_START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


def test_exit_waits_for_a_native_thread_inside_python() -> None:
    assert wait_for_native_threads(timeout=5)  # none left over from earlier tests
    thread = NativeThread()
    thread.start()
    try:
        assert native_threads_in_python() == 1
        assert wait_for_native_threads(timeout=0.05) is False
    finally:
        threading.Timer(0.05, thread.release.set).start()
        assert wait_for_native_threads(timeout=5) is True  # released while it waited
        thread.finish()
    assert native_threads_in_python() == 0


def test_python_threads_are_not_waited_for() -> None:
    """A daemon thread still running at exit is Python's own: no wait."""
    stop = threading.Event()
    daemon = threading.Thread(target=stop.wait, daemon=True)
    daemon.start()
    try:
        assert wait_for_native_threads(timeout=5)
        assert native_threads_in_python() == 0
    finally:
        stop.set()
        daemon.join()
