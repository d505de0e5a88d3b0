"""Running coroutines from synchronous code (the one place sync meets async)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def in_async_context() -> bool:
    """True when an event loop is running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_coroutine_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code.

    Uses ``asyncio.run`` when this thread has no loop; otherwise runs it on a
    fresh loop in a helper thread, because a running loop cannot be re-entered.
    """
    if not in_async_context():
        return asyncio.run(coro)
    outcome: dict[str, Any] = {}

    def runner() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=runner, name="sluice-async-bridge")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def run_awaitable_sync(awaitable: Awaitable[T]) -> T:
    """Wait for any awaitable (a coroutine, a future, an object with ``__await__``)
    from synchronous code, as :func:`run_coroutine_sync` does."""

    async def wait() -> T:
        return await awaitable

    return run_coroutine_sync(wait())


def mark_coroutine_function(fn: F) -> F:
    """Make ``fn`` pass as a coroutine function to ``inspect``/``asyncio`` checks.

    For a function whose every result is awaitable, so that wrappers that
    insist on an async callable (asgiref's ``async_to_sync`` warns otherwise)
    take it: whoever treats it as a coroutine function awaits its result, and
    that works. Python 3.12 has ``inspect.markcoroutinefunction``; before it,
    ``asyncio.iscoroutinefunction`` looks for the marker set here.
    """
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        marked: F = mark(fn)
        return marked
    fn._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return fn
