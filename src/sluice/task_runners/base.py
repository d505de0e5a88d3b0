"""The task runner interface: how submitted task runs execute.

A runner receives :class:`RunnerCall` objects (the engine's task calls) whose
upstream futures may not be done yet. The base class waits for them without
blocking a worker (through done-callbacks), then hands the call to
:meth:`TaskRunner._execute`, which subclasses implement for their executor
(threads, processes, Dask). The returned future always resolves to a final
:class:`State`; a failure of the runner itself becomes a Crashed state.

Runners sit below the engine: everything they need of it comes with the call
(:class:`RunnerCall`), and nothing here imports ``sluice.engine``.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import threading
from typing import TYPE_CHECKING, Any, Protocol

from sluice.futures import SluiceFuture
from sluice.states import Cancelled, Crashed, State

if TYPE_CHECKING:
    from sluice.backend.protocol import RecordSink
    from sluice.schemas import TaskRunRecord
    from sluice.task_runners.remote import PortableTask


class RunnerCall(Protocol):
    """One task call as the engine hands it to a runner (the engine's ``TaskCall``).

    Attributes:
        record: the call's task run; a runner that executed the call elsewhere
            replaces it with the record sent back.
        args, kwargs: the arguments, which may hold upstream futures.
        upstream: the futures the call waits for (its arguments' and ``wait_for``'s).
        wait_for: ``wait_for=`` as given (``allow_failure`` wrappers kept), or None.
    """

    record: TaskRunRecord
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    upstream: list[SluiceFuture[Any]]
    wait_for: list[Any] | None

    @property
    def sink(self) -> RecordSink:
        """Where the call's records go (what another process recorded is replayed here)."""

    @property
    def caches(self) -> bool:
        """Whether the cache is asked before the call runs (its inputs must be values,
        in this process, to compute the key)."""

    def run(self) -> State:
        """Execute the call in this thread until a final state."""

    def prepare(self) -> State | None:
        """Resolve the upstream futures and ask the cache, in this process; the final
        state when the function must not run (an upstream failed, a cache hit)."""

    def finish(self, state: State) -> State:
        """Record ``state``, decided by the runner (cancelled, crashed), as the final one."""

    def finish_not_ready(self, upstream: State) -> State:
        """End the call NotReady because ``upstream`` (found by the runner) did not complete."""

    def unready_wait_for(self) -> State | None:
        """The state of a ``wait_for`` upstream that did not complete, or None."""

    def portable(self) -> PortableTask:
        """The task as another process runs it (see :mod:`sluice.task_runners.remote`)."""

    def remember_completion(self) -> None:
        """Keep a completion recorded by another process for the flow's later attempts."""


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
    def _execute(self, call: RunnerCall) -> cf.Future[State]:
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

    def submit(self, call: RunnerCall) -> SluiceFuture[Any]:
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
        record = call.record
        return SluiceFuture(record.id, record.task_name, outer, record.task_key)

    def _dispatch(self, call: RunnerCall, outer: cf.Future[State]) -> None:
        if self._closing:
            outer.set_result(call.finish(Cancelled(message="The flow run ended first")))
            return
        try:
            inner = self._execute(call)
        except BaseException as exc:
            state = Crashed(message=f"{self.name} could not start the task: {exc!r}", exception=exc)
            outer.set_result(call.finish(state))
            return
        inner.add_done_callback(lambda f: outer.set_result(self._final_state(call, f)))

    def _final_state(self, call: RunnerCall, inner: cf.Future[State]) -> State:
        if inner.cancelled():
            return call.finish(Cancelled(message="Cancelled before it started"))
        exc = inner.exception()
        if exc is not None:
            # The engine turns user errors into states; an exception here means the
            # runner or the engine itself broke, which is a crash.
            crashed = Crashed(message=f"The task run crashed: {exc!r}", exception=exc)
            return call.finish(crashed)
        return inner.result()
