"""Heartbeats of a running flow, and the pure rule that turns silence into Crashed."""

from __future__ import annotations

import datetime as _dt
import threading
from typing import TYPE_CHECKING

from sluice.states import utcnow

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.settings import Settings


def lapse_threshold(now: _dt.datetime, timeout_seconds: float) -> _dt.datetime:
    """Runs whose last sign of life is older than this are presumed dead."""
    return now - _dt.timedelta(seconds=timeout_seconds)


def detect_crashed_runs(
    backend: Backend, settings: Settings, now: _dt.datetime | None = None
) -> list[str]:
    """Mark Running flow runs whose heartbeat lapsed as Crashed; their ids.

    Called by whoever looks (CLI listings, resume, the server's service).
    """
    at = now or utcnow()
    return backend.mark_lapsed_runs_crashed(lapse_threshold(at, settings.heartbeat_timeout), at)


class Heartbeat:
    """A daemon thread that records a flow run's heartbeat every ``interval`` seconds."""

    def __init__(self, backend: Backend, flow_run_id: str, interval: float) -> None:
        self._backend = backend
        self._flow_run_id = flow_run_id
        self._interval = max(interval, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-heartbeat", daemon=True)

    def start(self) -> None:
        self._backend.heartbeat(self._flow_run_id, utcnow())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._backend.heartbeat(self._flow_run_id, utcnow())
            except Exception:
                # A missed beat is harmless; the next one (or the run's end) catches up.
                continue
