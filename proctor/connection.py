"""Where an agent's `Client.connect()` finds Temporal: the address, namespace and task queue it
was given, else the environment, else the running `proctor up`.

Agent side: reads `proctor.temporal.ConnectionSettings` (plain pydantic over the environment),
never the server's settings, so an agent installs with the base dependencies only.

It also makes a connected process exit cleanly. Each reply Temporal's native client gets is
handed to Python by a native (Tokio) thread that takes the GIL, resolves the asyncio future,
then releases the GIL. If the script's last `await` resumes and the interpreter starts
finalising while that thread still waits to take the GIL back, CPython forces the thread out,
and its release of the thread state aborts the process ("Fatal Python error:
PyGILState_Release: thread state ... must be current when releasing"; temporalio/sdk-python#300,
about 1 exit in 15). An exit hook, which runs before finalisation, releases the GIL until no
such thread is left.
"""

from __future__ import annotations

import atexit
import ctypes
import threading
import time
from dataclasses import dataclass
from functools import cache

from temporalio.client import Client as TemporalClient

from proctor.temporal import connect_temporal, connection_settings, temporal_address

EXIT_WAIT_SECONDS = 2.0
"""The most an exit waits for native threads to leave Python (they need microseconds)."""
_POLL_SECONDS = 0.001


@dataclass(frozen=True)
class AgentConnection:
    temporal: TemporalClient
    task_queue: str


async def connect_agent(
    address: str | None = None, *, namespace: str | None = None, task_queue: str | None = None
) -> AgentConnection:
    """Connect the way every agent process does (see `proctor.temporal` for encryption)."""
    settings = connection_settings()
    temporal = await connect_temporal(
        address or temporal_address(settings),
        namespace or settings.temporal_namespace,
        settings=settings,
    )
    exit_after_native_threads()
    return AgentConnection(temporal, task_queue or settings.task_queue)


@cache
def exit_after_native_threads() -> None:
    """Register, once per process, the exit hook the module's docstring explains."""
    atexit.register(wait_for_native_threads)


def wait_for_native_threads(timeout: float = EXIT_WAIT_SECONDS) -> bool:
    """Release the GIL until no thread outside Python's own holds a Python thread state (True),
    or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while native_threads_in_python() > 0:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def native_threads_in_python() -> int:
    """Threads holding a Python thread state that `threading` did not start: native threads
    inside (or waiting to re-enter) Python. Counted under the GIL, which every thread state is
    deleted under, so the list does not change shape while it is walked."""
    return _thread_states() - sum(
        1 for thread in threading.enumerate() if not isinstance(thread, threading._DummyThread)
    )


def _thread_states() -> int:
    count = 0
    state = _thread_head(_interpreter())
    while state:
        count += 1
        state = _next_thread(state)
    return count


# Prototypes of their own, so the shared `ctypes.pythonapi` functions keep their declarations.
_interpreter = ctypes.PYFUNCTYPE(ctypes.c_void_p)(("PyInterpreterState_Get", ctypes.pythonapi))
_thread_head = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(
    ("PyInterpreterState_ThreadHead", ctypes.pythonapi)
)
_next_thread = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(
    ("PyThreadState_Next", ctypes.pythonapi)
)
