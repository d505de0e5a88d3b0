"""One task call: what executing it needs, wherever it executes.

A :class:`TaskCall` is created by the engine for each call of a task
(:mod:`sluice.engine.task_calls`) and is what a task runner receives: it
implements :class:`sluice.task_runners.base.RunnerCall`, the runner's whole
view of the engine. A call sent to another process travels as a
:class:`RemoteTask` (the task, with what the flow's process knows) plus its
arguments and record.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.engine import task_results
from sluice.engine.inputs import not_ready, unready_wait_for
from sluice.engine.parameters import bind_arguments
from sluice.engine.standalone import standalone_backend
from sluice.engine.task_engine import TaskAttempts, run_task_sync
from sluice.logging.handlers import engine_line
from sluice.logging.loggers import TASK_LOGGER_NAME, RunLogger, task_run_logger
from sluice.schemas import StateRecord
from sluice.states import Failed, State
from sluice.transactions import get_transaction
from sluice.utilities.describe import state_label

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend, RecordSink
    from sluice.context import FlowRunContext
    from sluice.errors import SerializationError
    from sluice.futures import SluiceFuture
    from sluice.schemas import TaskRunRecord
    from sluice.settings import Settings
    from sluice.tasks import Task


class TaskCall:
    """Everything needed to execute one task run, wherever it executes."""

    __slots__ = (
        "args",
        "flow_ctx",
        "kwargs",
        "log_prints",
        "prepared",
        "record",
        "replayed",
        "returned_state",
        "settings",
        "sink",
        "task",
        "transaction",
        "upstream",
        "wait_for",
    )

    def __init__(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        record: TaskRunRecord,
        sink: RecordSink,
        flow_ctx: FlowRunContext | None,
        upstream: list[SluiceFuture[Any]],
        log_prints: bool,
        settings: Settings,
        prepared: bool = False,
        wait_for: list[Any] | None = None,
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.record = record
        self.sink = sink
        self.flow_ctx = flow_ctx
        self.upstream = upstream
        self.log_prints = log_prints
        self.settings = settings
        #: inputs resolved and cache checked (done once, in the flow's process)
        self.prepared = prepared
        #: the journal's state when this call was replayed instead of executed
        self.replayed: State | None = None
        #: ``wait_for=`` as given (``allow_failure`` wrappers kept)
        self.wait_for = wait_for
        #: what the function returned when that was a state or states (a direct
        #: call gives it back as it is, as Prefect does)
        self.returned_state: Any = None
        #: the transaction in progress where the call was made (see sluice.transactions)
        self.transaction = get_transaction()

    def reader(self) -> Backend:
        """The backend to read from (the flow's, or the standalone one)."""
        if self.flow_ctx is not None:
            return self.flow_ctx.backend
        return standalone_backend()

    def write(self, state: State, details: dict[str, Any] | None = None) -> State:
        """Move the run into ``state`` and record it."""
        record = self.record
        state.run_id = record.id
        record.apply(state)
        self.sink.write_task_run(
            record,
            StateRecord(
                record.id, "task", state.type, state.name, state.timestamp, state.message, details
            ),
        )
        return state

    def logger(self) -> RunLogger:
        """A ``logging`` logger bound to this task run (for user code)."""
        flow_run = self.flow_ctx.flow_run if self.flow_ctx else None
        return task_run_logger(self.sink, self.record, flow_run)

    def line(
        self,
        level: int,
        message: str,
        exc: BaseException | None = None,
        at: _dt.datetime | None = None,
        store: bool = True,
    ) -> None:
        """Record an engine line about this task run (and print it)."""
        record = self.record
        engine_line(
            self.sink,
            level,
            TASK_LOGGER_NAME,
            f"Task run {record.name!r}",
            message,
            record.flow_run_id,
            record.id,
            exc,
            at=at,
            store=store,
        )

    def parameters(self) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults filled in."""
        return bind_arguments(self.task.fn, self.task.name, self.args, self.kwargs)

    # -- what a task runner asks of the call (sluice.task_runners.base.RunnerCall) ----
    @property
    def caches(self) -> bool:
        """Whether the cache is asked before the call runs."""
        return self.task.effective_cache_policy is not None

    def run(self) -> State:
        """Execute the call in this thread until a final state."""
        return run_task_sync(self)

    def prepare(self) -> State | None:
        """Resolve upstream futures and ask the cache; the final state if the function
        must not run."""
        return TaskAttempts(self).prepare()

    def finish(self, state: State) -> State:
        """Record a final state decided outside the task's own execution (by a runner)."""
        self.write(state)
        level = logging.ERROR if state.is_crashed() else logging.INFO
        self.line(level, f"Finished in state {state_label(state)}", state.exception)
        return state

    def finish_not_ready(self, upstream: State) -> State:
        """End the call NotReady: ``upstream`` did not complete."""
        return TaskAttempts(self).finish(not_ready(upstream))

    def unready_wait_for(self) -> State | None:
        """The state of the first ``wait_for`` upstream that did not complete, or None."""
        return unready_wait_for(self.wait_for) if self.wait_for else None

    def portable(self) -> RemoteTask:
        """The task as another process runs it (one per task and flow run)."""
        flow_ctx = self.flow_ctx
        if flow_ctx is None:
            return RemoteTask(self.task, self.log_prints, self.settings)
        key = (id(self.task), self.log_prints)
        found = flow_ctx.remote_tasks.get(key)
        if found is None:
            task = task_results.with_flow_result_options(self.task, flow_ctx.flow, self)
            found = flow_ctx.remote_tasks[key] = RemoteTask(task, self.log_prints, self.settings)
        return found

    def remember_completion(self) -> None:
        """A completion recorded by another process joins the flow's journal (which
        a retry of the flow replays), as one recorded here does."""
        flow_ctx = self.flow_ctx
        if flow_ctx is not None and flow_ctx.keep_journal:
            flow_ctx.journal.record(self.record)


@dataclass
class RemoteTask:
    """A task as another process runs its calls (a
    :class:`sluice.task_runners.remote.PortableTask`): pickled with the calls,
    it carries what that process cannot know, there being no flow run there:
    the flow's result options (made the task's own), whether prints are
    logged, the settings.
    """

    task: Task[..., Any]
    log_prints: bool
    settings: Settings

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def fn(self) -> Any:
        return self.task.fn

    def run(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], record: TaskRunRecord, sink: RecordSink
    ) -> State:
        """Run one call (its inputs resolved, its cache asked) until a final state."""
        return run_task_sync(self._call(args, kwargs, record, sink))

    def fail(self, record: TaskRunRecord, sink: RecordSink, error: SerializationError) -> State:
        """Record the call Failed for ``error`` (its result could not be sent back)."""
        failed = Failed(message=str(error), exception=error)
        details = {"exception_type": "sluice.errors.SerializationError"}
        return self._call((), {}, record, sink).write(failed, details)

    def _call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], record: TaskRunRecord, sink: RecordSink
    ) -> TaskCall:
        return TaskCall(
            self.task, args, kwargs, record, sink, None, [], self.log_prints, self.settings,
            prepared=True,
        )  # fmt: skip
