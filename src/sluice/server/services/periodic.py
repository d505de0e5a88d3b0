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
        #: the step running in a worker thread, if any (stop waits for it)
        self._step: asyncio.Future[object] | None = None

    def start(self) -> None:
        """Start ticking on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Stop ticking (a step in progress finishes first) and release the lock."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Cancelling the task does not stop a step already running in its
        # thread: wait for it, so the database is not closed under it.
        step, self._step = self._step, None
        if step is not None:
            await asyncio.gather(step, return_exceptions=True)
        await asyncio.to_thread(self.lock.release)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.tick()

    async def tick(self) -> bool:
        """One tick: the step runs if this process holds the lock; whether it ran."""
        try:
            if not await asyncio.to_thread(self.lock.try_acquire):
                return False
            self._step = asyncio.ensure_future(asyncio.to_thread(self.step))
            await asyncio.shield(self._step)
        except Exception:
            # A service must outlive a bad tick (database restarting, busy ...).
            logger.exception("Service %s failed; trying again in %ss", self.name, self.interval)
            return False
        self.ticks += 1
        return True
