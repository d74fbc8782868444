"""The deadline: whatever the worker is doing when ``--deadline-seconds`` passes, it writes one
``Timeout`` error, stops the processes it started (tritonserver), and exits. It never hangs.

A daemon thread waits on an event with a timeout, so the deadline holds even while the main
thread is stuck in a C call (a model load, a socket read). SIGTERM (the kubelet stopping the pod,
a Job's activeDeadlineSeconds) takes the same path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


def register_child(proc: subprocess.Popen) -> None:
    """Remember a process this worker started, so the deadline can stop it."""
    with _children_lock:
        _children[proc.pid] = proc


def unregister_child(proc: subprocess.Popen) -> None:
    with _children_lock:
        _children.pop(proc.pid, None)


def kill_children() -> None:
    """SIGKILL every registered child's process group (each was started in its own session)."""
    with _children_lock:
        procs = list(_children.values())
        _children.clear()
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class Watchdog:
    """Calls ``on_expire(message)`` once ``seconds`` have passed since ``started`` (monotonic)."""

    def __init__(self, seconds: float, on_expire: Callable[[str], None], started: float | None = None):
        self.seconds = seconds
        self.started = time.monotonic() if started is None else started
        self.deadline = self.started + seconds
        self.on_expire = on_expire
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hp-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _run(self) -> None:
        if not self._cancel.wait(timeout=max(self.remaining(), 0)):
            self.on_expire(f"the worker did not finish within --deadline-seconds {self.seconds:g}")


def install_sigterm(handler: Callable[[str], None]) -> None:
    """Route SIGTERM and SIGINT to ``handler`` (main thread only)."""

    def on_signal(signum, _frame):
        handler(f"terminated by {signal.Signals(signum).name} before finishing")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
