"""The task runner interface: how submitted task runs execute.

A runner receives :class:`~sluice.engine.task_engine.TaskCall` objects whose
upstream futures may not be done yet. The base class waits for them without
blocking a worker (through done-callbacks), then hands the call to
:meth:`TaskRunner._execute`, which subclasses implement for their executor
(threads, processes, Dask). The returned future always resolves to a final
:class:`State`; a failure of the runner itself becomes a Crashed state.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import threading
from typing import TYPE_CHECKING, Any

from sluice.futures import SluiceFuture
from sluice.states import Cancelled, Crashed, State

if TYPE_CHECKING:
    from sluice.engine.task_engine import TaskCall


class TaskRunner(abc.ABC):
    """Executes submitted task runs. Use as a context manager or start()/shutdown()."""

    def __init__(self) -> None:
        self._closing = False

    @property
    def name(self) -> str:
        return type(self).__name__

    @abc.abstractmethod
    def duplicate(self) -> TaskRunner:
        """A new, unstarted runner with the same configuration.

        A flow holds one runner as a template; each flow run starts its own copy.
        """

    @abc.abstractmethod
    def start(self) -> None:
        """Acquire the executor (threads, processes, a cluster connection)."""

    @abc.abstractmethod
    def _shutdown_executor(self, cancel_pending: bool) -> None:
        """Release the executor, waiting for running calls."""

    @abc.abstractmethod
    def _execute(self, call: TaskCall) -> cf.Future[State]:
        """Run a call whose upstream futures are all done; a future of its final state."""

    def shutdown(self, cancel_pending: bool = False) -> None:
        """Stop accepting work and release the executor.

        Args:
            cancel_pending: record calls that have not started as Cancelled
                instead of running them.
        """
        self._closing = cancel_pending
        self._shutdown_executor(cancel_pending)

    def __enter__(self) -> TaskRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(cancel_pending=exc_info[0] is not None)

    def submit(self, call: TaskCall) -> SluiceFuture[Any]:
        """Run ``call`` once its upstream futures are done; returns its future."""
        outer: cf.Future[State] = cf.Future()
        waiting = [f for f in call.upstream if not f.done()]
        if not waiting:
            self._dispatch(call, outer)
        else:
            remaining = [len(waiting)]
            lock = threading.Lock()

            def on_upstream_done(_future: SluiceFuture[Any]) -> None:
                with lock:
                    remaining[0] -= 1
                    ready = remaining[0] == 0
                if ready:
                    self._dispatch(call, outer)

            for future in waiting:
                future.add_done_callback(on_upstream_done)
        return SluiceFuture(call.record.id, call.task.name, outer, call.record.task_key)

    def _dispatch(self, call: TaskCall, outer: cf.Future[State]) -> None:
        from sluice.engine.task_engine import record_final

        if self._closing:
            outer.set_result(record_final(call, Cancelled(message="The flow run ended first")))
            return
        try:
            inner = self._execute(call)
        except BaseException as exc:
            state = Crashed(message=f"{self.name} could not start the task: {exc!r}", exception=exc)
            outer.set_result(record_final(call, state))
            return
        inner.add_done_callback(lambda f: outer.set_result(self._final_state(call, f)))

    def _final_state(self, call: TaskCall, inner: cf.Future[State]) -> State:
        from sluice.engine.task_engine import record_final

        if inner.cancelled():
            return record_final(call, Cancelled(message="Cancelled before it started"))
        exc = inner.exception()
        if exc is not None:
            # The engine turns user errors into states; an exception here means the
            # runner or the engine itself broke, which is a crash.
            crashed = Crashed(message=f"The task run crashed: {exc!r}", exception=exc)
            return record_final(call, crashed)
        return inner.result()
