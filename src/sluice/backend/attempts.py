"""The attempts a backend's writer holds, and what the store said of them.

A process executing a flow run holds its attempt (:mod:`sluice.liveness`):
the backend's writer sends a fence per held run with every batch, and the
store's write path answers which runs a later attempt took over (see
:mod:`sluice.store.fencing`). This keeps that bookkeeping for both backends:
which attempts are held, which were lost, and when each was last confirmed
(on the monotonic clock: the engine's lease, see
:func:`sluice.liveness.lease_expired`).
"""

from __future__ import annotations

import threading
import time


class HeldAttempts:
    """Attempts held by one backend (thread-safe: engine threads hold and
    release, the writer thread reports what the store said)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._lost: dict[str, int] = {}
        self._confirmed: dict[str, float] = {}

    def hold(self, run_id: str, attempt: int) -> None:
        """From now on, every batch fences ``run_id`` with ``attempt``."""
        with self._lock:
            self._held[run_id] = attempt
            self._lost.pop(run_id, None)
            self._confirmed[run_id] = time.monotonic()

    def release(self, run_id: str) -> None:
        """Stop fencing ``run_id`` (its execution here is over)."""
        with self._lock:
            self._held.pop(run_id, None)
            self._confirmed.pop(run_id, None)

    def fences(self) -> tuple[list[tuple[str, int]], float]:
        """The ``(run id, attempt)`` pairs a batch written now carries, and now (monotonic)."""
        with self._lock:
            return sorted(self._held.items()), time.monotonic()

    def settle(self, sent: list[tuple[str, int]], superseded: set[str], sent_at: float) -> None:
        """Record the store's answer to a batch that carried ``sent`` at ``sent_at``."""
        if not sent:
            return
        with self._lock:
            for run_id, attempt in sent:
                if run_id in superseded:
                    self._lost[run_id] = attempt
                elif self._held.get(run_id) == attempt:
                    previous = self._confirmed.get(run_id, 0.0)
                    self._confirmed[run_id] = max(previous, sent_at)

    def lost(self, run_id: str) -> bool:
        """Whether the store refused a batch fenced by this process's attempt of ``run_id``."""
        return run_id in self._lost

    def confirmed_at(self, run_id: str) -> float:
        """When (monotonic) a batch last proved ``run_id``'s attempt still held."""
        return self._confirmed.get(run_id, 0.0)


__all__ = ["HeldAttempts"]
