"""Running coroutines from synchronous code (the one place sync meets async)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


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
    return outcome["value"]


def run_awaitable_sync(awaitable: Awaitable[T]) -> T:
    """Wait for any awaitable (a coroutine, a future, an object with ``__await__``)
    from synchronous code, as :func:`run_coroutine_sync` does."""

    async def wait() -> T:
        return await awaitable

    return run_coroutine_sync(wait())
