"""Turning SIGTERM into an orderly end of the flow run (recorded as Crashed)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class TerminationRequested(SystemExit):
    """Raised in the main thread when the process receives SIGTERM.

    A ``SystemExit`` (exit status 143, like a default SIGTERM death) so that the
    process still ends, after the engine has recorded why.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"the process received {signal.Signals(self.signum).name}"


@contextlib.contextmanager
def terminate_gracefully() -> Iterator[None]:
    """While the block runs in the main thread, SIGTERM raises :class:`TerminationRequested`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        # Somebody else (a worker, a test harness) handles SIGTERM: leave it to them.
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise TerminationRequested(signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
