"""A fix for Sanic's worker manager, applied by create_app (in the main process, where it runs).

Sanic 25.12 cannot be stopped while it starts: a SIGTERM (or SIGINT) that reaches the main
process before every worker has acknowledged its start-up either never ends the process or
crashes it —
- during `WorkerManager.wait_for_ack`, the handler terminates the workers and publishes the
  shutdown message (None); the wait takes it for someone else's message, publishes it again and
  polls again, reading its own None forever while the terminated workers never acknowledge
  (a core spins until systemd's TimeoutStopSec ends it with SIGKILL);
- before the processes start (in main_process_ready), it terminates none of them, and the
  manager later joins workers that were never told to stop — or trips over the shared state
  it is still building (`'NoneType' object is not a mapping`).
A stop right after a (re)start is exactly when this happens.

The fix: a shutdown signal that arrives before the acknowledgement wait is over is held, and
handled the normal way as soon as that wait ends — so a stop during start-up costs at most the
start-up itself, and then follows Sanic's own path.
"""

from __future__ import annotations

from typing import Any

from sanic.worker.manager import WorkerManager

_PATCHED = "_sanic_trace_startup_stop_fix"


def fix_shutdown_during_startup() -> None:
    """Idempotent: make WorkerManager hold a shutdown signal until its workers have started."""
    if getattr(WorkerManager, _PATCHED, False):
        return
    handle_signal = WorkerManager.shutdown_signal
    wait_for_ack = WorkerManager.wait_for_ack

    def shutdown_signal(self: WorkerManager, signal: int, frame: Any) -> None:
        if not getattr(self, "_sanic_trace_started", False):
            self._sanic_trace_held_signal = signal
            return
        handle_signal(self, signal, frame)

    def wait_then_handle_held_signal(self: WorkerManager) -> None:
        wait_for_ack(self)
        self._sanic_trace_started = True
        held = getattr(self, "_sanic_trace_held_signal", None)
        if held is not None:
            handle_signal(self, held, None)

    WorkerManager.shutdown_signal = shutdown_signal  # type: ignore[method-assign]
    WorkerManager.wait_for_ack = wait_then_handle_held_signal  # type: ignore[method-assign]
    setattr(WorkerManager, _PATCHED, True)
