"""Task runs on a pool of threads in the flow's process (the default runner)."""

from __future__ import annotations

import concurrent.futures as cf
import os
from typing import TYPE_CHECKING

from sluice.task_runners.base import RunnerCall, TaskRunner

if TYPE_CHECKING:
    from sluice.states import State


class ThreadPoolTaskRunner(TaskRunner):
    """Run submitted tasks on threads.

    Args:
        max_workers: most task runs executing at once (default ``min(32, cpus + 4)``).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._executor: cf.ThreadPoolExecutor | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(self.max_workers)

    def start(self) -> None:
        if self._executor is None:
            self._executor = cf.ThreadPoolExecutor(
                self.max_workers, thread_name_prefix="sluice-task"
            )

    def _shutdown_executor(self, cancel_pending: bool) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel_pending)
            self._executor = None

    def _execute(self, call: RunnerCall) -> cf.Future[State]:
        if self._executor is None:
            self.start()
        assert self._executor is not None
        return self._executor.submit(call.run)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


#: The name Prefect 2 users know.
ConcurrentTaskRunner = ThreadPoolTaskRunner
