"""Stopping a synchronous call that runs past its time limit.

Python cannot kill a thread. In the main thread (when ``SIGALRM`` is free) the
limit is an alarm signal, which also interrupts blocking calls such as
``time.sleep``. Elsewhere the call runs in a helper thread that the caller
stops waiting for at the deadline; the helper is then sent an asynchronous
exception so it stops at its next Python bytecode rather than running on.
"""

from __future__ import annotations

import contextvars
import ctypes
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Expired(BaseException):
    """Raised into timed-out code; a BaseException so user code cannot catch it."""


def call_with_time_limit(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float | None,
    error: Callable[[], BaseException],
) -> T:
    """Call ``fn(*args, **kwargs)``; raise ``error()`` if it runs past ``seconds``.

    ``error`` builds the caller's own exception type, so a ``TimeoutError`` the
    user's code raises by itself is never mistaken for the engine's limit.
    """
    if not seconds or seconds <= 0:
        return fn(*args, **kwargs)
    if threading.current_thread() is threading.main_thread() and _alarm_free():
        return _call_with_alarm(fn, args, kwargs, seconds, error)
    return _call_in_helper_thread(fn, args, kwargs, seconds, error)


def _alarm_free() -> bool:
    return signal.getitimer(signal.ITIMER_REAL)[0] == 0.0 and signal.getsignal(signal.SIGALRM) in (
        signal.SIG_DFL,
        signal.SIG_IGN,
        None,
    )


def _call_with_alarm(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float,
    error: Callable[[], BaseException],
) -> T:
    def on_alarm(signum: int, frame: object) -> None:
        raise _Expired()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args, **kwargs)
    except _Expired:
        raise error() from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_in_helper_thread(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float,
    error: Callable[[], BaseException],
) -> T:
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except _Expired:
            outcome["expired"] = True
        except BaseException as exc:
            outcome["error"] = exc

    helper = threading.Thread(target=target, name="sluice-time-limited", daemon=True)
    helper.start()
    helper.join(seconds)
    if helper.is_alive():
        if helper.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(helper.ident), ctypes.py_object(_Expired)
            )
        raise error()
    if "error" in outcome:
        raise outcome["error"]
    if outcome.get("expired"):
        raise error()
    value: T = outcome["value"]
    return value
