"""Task runs in a pool of worker processes (for CPU-bound Python code)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import TYPE_CHECKING

from sluice.errors import SerializationError
from sluice.states import Failed
from sluice.task_runners.base import RunnerCall, TaskRunner
from sluice.task_runners.remote import RemoteCall, pack_call, run_remote, unpack_outcome

if TYPE_CHECKING:
    from sluice.states import State


class ProcessPoolTaskRunner(TaskRunner):
    """Run submitted tasks in worker processes.

    Tasks and their arguments travel to the workers with cloudpickle; results,
    states and logs travel back and are recorded by the flow's process. Worker
    processes are *spawned* (not forked) so they never inherit the flow's
    database connection or writer thread; as with ``multiprocessing``, guard
    the flow call with ``if __name__ == "__main__":``.

    Args:
        max_workers: number of worker processes (default: number of CPUs).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers or (os.cpu_count() or 1)
        self._executor: cf.ProcessPoolExecutor | None = None

    def duplicate(self) -> ProcessPoolTaskRunner:
        return type(self)(self.max_workers)

    def start(self) -> None:
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(
                self.max_workers, mp_context=multiprocessing.get_context("spawn")
            )

    def _shutdown_executor(self, cancel_pending: bool) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel_pending)
            self._executor = None

    def _execute(self, call: RunnerCall) -> cf.Future[State]:
        result: cf.Future[State] = cf.Future()
        # Upstream results are resolved here, in the flow's process: futures
        # cannot travel to another process.
        early = call.prepare()
        if early is not None:
            result.set_result(early)
            return result
        remote = RemoteCall(call.portable(), call.args, call.kwargs, call.record)
        try:
            payload = pack_call(remote)
        except SerializationError as exc:
            result.set_result(call.finish(Failed(message=str(exc), exception=exc)))
            return result
        if self._executor is None:
            self.start()
        assert self._executor is not None
        inner = self._executor.submit(run_remote, payload)
        inner.add_done_callback(lambda f: _settle(call, f, result))
        return result

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"


def _settle(call: RunnerCall, inner: cf.Future[bytes], result: cf.Future[State]) -> None:
    """Replay the child's records into the flow's backend and resolve ``result``."""
    if inner.cancelled():
        result.cancel()
        result.set_running_or_notify_cancel()
        return
    exc = inner.exception()
    if exc is not None:
        result.set_exception(exc)
        return
    try:
        outcome = unpack_outcome(inner.result())
        outcome.sink.replay(call.sink)
        call.record = outcome.record
        result.set_result(outcome.state())
    except BaseException as error:
        result.set_exception(error)
