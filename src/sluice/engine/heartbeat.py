"""Heartbeats of a running flow, and crash detection by whoever looks.

A run is presumed dead when its heartbeat lapsed, judged with the
database's clock (heartbeats are stamped with it: see
:mod:`sluice.store.clock`), or at once when its process ran on the
observer's host and is gone (:mod:`sluice.utilities.process_identity`).
The rules themselves are pure, in :mod:`sluice.liveness`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sluice.liveness import ProcessIdentity, process_gone
from sluice.schemas import FlowRunFilter
from sluice.states import StateType, utcnow
from sluice.utilities.process_identity import host_id, started

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.engine.fencing import AttemptGuard
    from sluice.schemas import FlowRunRecord
    from sluice.settings import Settings

#: Running runs read per look for processes gone from this host
_MAX_RUNNING = 10_000


def detect_crashed_runs(backend: Backend, settings: Settings) -> list[str]:
    """Mark Running flow runs whose process is gone Crashed; their ids.

    Called by whoever looks (CLI listings, resume, the server's service,
    workers): runs whose process on this host is gone are marked at once,
    runs whose heartbeat lapsed (anywhere) after ``settings.heartbeat_timeout``.
    """
    marked = mark_gone_runs(backend)
    marked += backend.mark_lapsed_runs_crashed(settings.heartbeat_timeout)
    return marked


def mark_gone_runs(backend: Backend) -> list[str]:
    """Mark Crashed the Running runs whose process ran on this host and is gone."""
    here = host_id()
    if here is None:
        return []
    running = backend.list_flow_runs(
        FlowRunFilter(state_types=[StateType.RUNNING], limit=_MAX_RUNNING)
    )
    gone = []
    for run in running:
        identity = _identity(run)
        if identity is not None and process_gone(identity, here, started(identity.pid)):
            gone.append(run)
    return backend.mark_gone_runs_crashed(gone) if gone else []


def _identity(run: FlowRunRecord) -> ProcessIdentity | None:
    if run.host_id is None or run.pid is None or run.pid_started is None:
        return None
    return ProcessIdentity(run.host_id, run.pid, run.pid_started)


class Heartbeat:
    """A daemon thread that records the heartbeat of a flow run (and of its subflow runs
    in this process) every ``interval`` seconds.

    With a ``guard``, each beat first checks that the run still belongs to this
    process's attempt; when it does not, the beats stop and the run's thread
    is interrupted (see :mod:`sluice.engine.fencing`).
    """

    def __init__(
        self,
        backend: Backend,
        flow_run_id: str,
        interval: float,
        guard: AttemptGuard | None = None,
    ) -> None:
        self._backend = backend
        self._run_ids = [flow_run_id]
        self._guard = guard
        self._interval = max(interval, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-heartbeat", daemon=True)

    def start(self) -> None:
        self._backend.heartbeat(self._run_ids[0], utcnow())
        self._thread.start()

    def add(self, flow_run_id: str) -> None:
        """Beat for a subflow run of this process too, from now on."""
        self._backend.heartbeat(flow_run_id, utcnow())
        self._run_ids = [*self._run_ids, flow_run_id]

    def remove(self, flow_run_id: str) -> None:
        """Stop beating for a subflow run (it finished)."""
        self._run_ids = [r for r in self._run_ids if r != flow_run_id]

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._guard is not None and self._guard.lost():
                self._guard.interrupt()
                return
            at = utcnow()
            for run_id in self._run_ids:
                try:
                    self._backend.heartbeat(run_id, at)
                except Exception:
                    # A missed beat is harmless; the next one (or the run's end) catches up.
                    continue
