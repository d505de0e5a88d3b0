"""An execution's hold on its flow run: stop as soon as another attempt took it over.

Each execution of a flow run holds an attempt number (see
:mod:`sluice.liveness`); the store refuses the writes of a superseded one
(:mod:`sluice.store.fencing`). The :class:`AttemptGuard` makes the process
itself stop: the flow thread checks it before each task call (a few hundred
nanoseconds while the attempt's writes keep being confirmed), and the
heartbeat thread checks it on every beat and interrupts the flow thread
when the store refused the attempt. Either way the run ends with
:class:`~sluice.errors.Superseded`, which records nothing.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import TYPE_CHECKING

from sluice.errors import StoreError, Superseded
from sluice.liveness import lease_expired

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend

logger = logging.getLogger("sluice.flow_runs")

#: seconds between two confirmations tried while the store cannot be reached
_UNREACHABLE_BACKOFF = 5.0


class AttemptGuard:
    """The hold of attempt ``attempt`` on flow run ``run_id`` in this process.

    Args:
        window: how long after its last confirmed write the attempt may start
            work without asking the store again (:func:`sluice.liveness.lease_window`).
        parent: the guard of the flow run this one is a subflow of.
    """

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        attempt: int,
        window: float,
        parent: AttemptGuard | None = None,
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.attempt = attempt
        self.window = window
        self.parent = parent
        self._retry_after = 0.0
        #: the thread the run's code runs in (the one to interrupt)
        self.thread_id = threading.get_ident()

    def check(self) -> None:
        """Raise :class:`Superseded` if a later attempt holds the run (or its parent's).

        Called before starting work. When no write confirmed the attempt
        within the window (the process was stopped, or the store is slow),
        asks the store now; if the store cannot answer, goes on and asks
        again a little later (the store still refuses a superseded write).
        """
        if self.parent is not None:
            self.parent.check()
        if self.backend.attempt_lost(self.run_id):
            raise Superseded(self.run_id, self.attempt)
        now = time.monotonic()
        confirmed = max(self.backend.attempt_confirmed_at(self.run_id), self._retry_after)
        if not lease_expired(confirmed, now, self.window):
            return
        try:
            held = self.backend.confirm_attempt(self.run_id, self.attempt)
        except StoreError as exc:
            logger.warning("Cannot confirm that flow run %s is still ours: %s", self.run_id, exc)
            self._retry_after = now - self.window + _UNREACHABLE_BACKOFF
            return
        if not held:
            raise Superseded(self.run_id, self.attempt)

    def lost(self) -> bool:
        """Whether the store refused this attempt (or its parent's), asking it if the
        lease ran out; never raises."""
        try:
            self.check()
        except Superseded:
            return True
        return False

    def interrupt(self) -> None:
        """Raise :class:`Superseded` in the run's thread at its next Python instruction
        (called from the heartbeat thread)."""
        exc = type(
            "SupersededHere", (Superseded,), {"__init__": _bound_init(self.run_id, self.attempt)}
        )
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self.thread_id), ctypes.py_object(exc)
        )


def _bound_init(run_id: str, attempt: int) -> object:
    # An asynchronous exception is raised as a class, without arguments: a
    # subclass whose constructor supplies the run and attempt.
    def __init__(self: Superseded) -> None:
        Superseded.__init__(self, run_id, attempt)

    return __init__


__all__ = ["AttemptGuard"]
