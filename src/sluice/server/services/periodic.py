"""A service that does one blocking step every few seconds, as one instance per database.

Each tick first makes sure this process holds the service's
:class:`~sluice.store.locks.SingletonLock` (so of several servers on one
PostgreSQL database, one does the work), then runs the step in a worker
thread so the event loop keeps answering requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sluice.store.locks import SingletonLock

logger = logging.getLogger("sluice.server.services")

#: seconds stop() waits for a step in progress before abandoning it
STOP_TIMEOUT = 10.0


class PeriodicService:
    """Run ``step`` every ``interval`` seconds while holding ``lock``.

    Args:
        name: shown in logs.
        step: blocking work; its exceptions are logged and the next tick tries again.
        interval: seconds between ticks (the first tick comes after one interval,
            so starting the server is not slowed down by it).
        lock: held while the service runs; released when it stops.
    """

    def __init__(
        self, name: str, step: Callable[[], object], interval: float, lock: SingletonLock
    ) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self.lock = lock
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> None:
        """Start ticking on the running event loop."""
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Stop ticking (a step in progress finishes first, for up to ``STOP_TIMEOUT``
        seconds) and release the lock.

        Waiting matters: a step's thread cannot be cancelled, and one still taking
        the lock's connection after the release would leave it open.
        """
        task, self._task = self._task, None
        if task is not None and self._stopping is not None:
            self._stopping.set()
            _done, pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.to_thread(self.lock.release)

    async def _loop(self) -> None:
        assert self._stopping is not None
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval)
                return  # stop() was called
            except asyncio.TimeoutError:
                await self.tick()

    async def tick(self) -> bool:
        """One tick: the step runs if this process holds the lock; whether it ran."""
        try:
            if not await asyncio.to_thread(self.lock.try_acquire):
                return False
            await asyncio.to_thread(self.step)
        except Exception:
            # A service must outlive a bad tick (database restarting, busy ...).
            logger.exception("Service %s failed; trying again in %ss", self.name, self.interval)
            return False
        self.ticks += 1
        return True
