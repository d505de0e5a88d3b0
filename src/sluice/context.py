"""What the engine knows about the run in progress, carried in context variables.

Context variables (not globals) so that threads, asyncio tasks and nested
subflows each see their own run.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.errors import MissingContextError

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.engine.journal import Journal
    from sluice.engine.task_call import TaskCall
    from sluice.flows import Flow
    from sluice.futures import SluiceFuture
    from sluice.logging.loggers import RunLogger
    from sluice.schemas import FlowRunRecord, TaskRunRecord
    from sluice.settings import Settings
    from sluice.task_runners.base import TaskRunner
    from sluice.tasks import Task


@dataclass
class FlowRunContext:
    """The flow run in progress in this context."""

    flow: Flow[..., Any]
    flow_run: FlowRunRecord
    backend: Backend
    settings: Settings
    task_runner: TaskRunner
    parameters: dict[str, Any]
    logger: RunLogger
    log_prints: bool
    #: completed calls of earlier attempts, replayed instead of run again
    journal: Journal
    #: remember this attempt's completed calls (for the flow's own retries)
    keep_journal: bool
    #: one counter per task name: the call index that makes journal keys deterministic
    call_counters: dict[str, itertools.count[int]] = field(default_factory=dict)
    #: failed child runs of a resumed run, by their position in this run
    resumable_children: dict[str, FlowRunRecord] = field(default_factory=dict)
    #: futures submitted in this run, awaited before the flow finishes
    futures: list[SluiceFuture[Any]] = field(default_factory=list)
    #: this execution's hold on the run (checked before each task call; see
    #: sluice.engine.fencing), None for runs that are not fenced
    guard: Any = None
    #: the heartbeat of the run's top-level flow run in this process
    heartbeat: Any = None
    #: this run's tasks as other processes run them, by (id of the task, log_prints)
    #: (see :meth:`sluice.engine.task_call.TaskCall.portable`)
    remote_tasks: dict[tuple[int, bool], Any] = field(default_factory=dict)
    _counter_lock: threading.Lock = field(default_factory=threading.Lock)

    def next_call_index(self, task_name: str) -> int:
        """The index of the next call of ``task_name`` in this flow run."""
        counter = self.call_counters.get(task_name)
        if counter is None:
            with self._counter_lock:
                counter = self.call_counters.setdefault(task_name, itertools.count())
        return next(counter)


@dataclass
class TaskRunContext:
    """The task run in progress in this context."""

    task: Task[..., Any]
    task_run: TaskRunRecord
    #: the call being run (its ``args``/``kwargs`` are resolved before the function runs)
    call: TaskCall | None
    log_prints: bool
    flow_run_id: str | None
    #: builds the run's logger; called on first use because most tasks never log
    make_logger: Callable[[], RunLogger]
    _logger: RunLogger | None = None
    _parameters: dict[str, Any] | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults filled in (bound on first
        use: most tasks never ask, and binding costs more than the rest of a call)."""
        if self._parameters is None:
            if self.call is None:
                return {}
            self._parameters = self.call.parameters()
        return self._parameters

    def get_logger(self) -> RunLogger:
        """This task run's logger (created on first use)."""
        if self._logger is None:
            self._logger = self.make_logger()
        return self._logger


flow_run_var: ContextVar[FlowRunContext | None] = ContextVar("sluice_flow_run", default=None)
task_run_var: ContextVar[TaskRunContext | None] = ContextVar("sluice_task_run", default=None)
tags_var: ContextVar[frozenset[str]] = ContextVar("sluice_tags", default=frozenset())


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run in progress: the task run if inside one, else the flow run.

    Raises:
        MissingContextError: called outside any flow or task run.
    """
    task_ctx = task_run_var.get()
    if task_ctx is not None:
        return task_ctx
    flow_ctx = flow_run_var.get()
    if flow_ctx is not None:
        return flow_ctx
    raise MissingContextError("No flow or task run is in progress in this context.")


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every flow and task run started inside the ``with`` block.

    Example::

        with tags("nightly", "io"):
            my_flow()
    """
    current = tags_var.get()
    new = current | frozenset(names)
    token = tags_var.set(new)
    try:
        yield new
    finally:
        tags_var.reset(token)
