"""Running a task call in another process and bringing back what it recorded.

The engine hands the runner a :class:`PortableTask` with each call: the task
as another process runs it, picklable. The child runs the call through it
(with the ordinary task engine), reporting into a :class:`CollectingSink`;
the parent replays the collected records into the flow's backend, so a task
in another process is recorded exactly like one in a thread (states with
their real timestamps, logs, retries).
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sluice.errors import SerializationError
from sluice.logging.handlers import setup_logging
from sluice.results.owners import owner_of_task_run
from sluice.schemas import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.states import State, StateType

if TYPE_CHECKING:
    from sluice.backend.protocol import RecordSink
    from sluice.settings import Settings


class PortableTask(Protocol):
    """A task as another process runs its calls (the engine's, picklable).

    It carries what the flow's process knows and the other process does not:
    the flow's result options made explicit, whether prints are logged, the
    settings.
    """

    @property
    def task_name(self) -> str: ...

    @property
    def fn(self) -> Callable[..., Any]:
        """The user's function (a Dask recomputation of a stored run calls it bare)."""

    @property
    def settings(self) -> Settings: ...

    def run(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], record: TaskRunRecord, sink: RecordSink
    ) -> State:
        """Run the call (its inputs resolved) until a final state; ``record`` is updated."""

    def fail(self, record: TaskRunRecord, sink: RecordSink, error: SerializationError) -> State:
        """Record the call Failed for ``error`` (its result could not travel back)."""


class CollectingSink:
    """A :class:`~sluice.backend.protocol.RecordSink` that keeps records in memory."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any, Any]] = []

    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None:
        self.records.append(("task_run", copy.copy(run), state))

    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None:
        self.records.append(("flow_run", copy.copy(run), state))

    def write_logs(self, logs: Sequence[LogRecord]) -> None:
        self.records.append(("logs", list(logs), None))

    def replay(self, sink: RecordSink) -> None:
        """Send every collected record, in order, to ``sink``."""
        for kind, item, state in self.records:
            if kind == "task_run":
                sink.write_task_run(item, state)
            elif kind == "flow_run":
                sink.write_flow_run(item, state)
            else:
                sink.write_logs(item)


@dataclass
class RemoteCall:
    """What the child needs to run one task call."""

    task: PortableTask
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    record: TaskRunRecord


@dataclass
class RemoteOutcome:
    """What the child sends back: the final state's parts and the collected records."""

    record: TaskRunRecord
    state_type: StateType
    state_name: str
    message: str | None
    data: Any
    exception: BaseException | None
    sink: CollectingSink = field(default_factory=CollectingSink)

    def state(self) -> State:
        return State(
            self.state_type,
            self.state_name,
            self.message,
            self.data,
            self.exception,
            result_ref=self.record.result,
            result_owner=owner_of_task_run(self.record),
        )


def pack_call(remote: RemoteCall) -> bytes:
    """Serialize a call for the child.

    Raises:
        SerializationError: an argument (or the task itself) cannot be pickled.
    """
    import cloudpickle  # a heavy seam: a flow run that sends nothing away never loads it

    try:
        blob: bytes = cloudpickle.dumps(remote)
        return blob
    except Exception as exc:
        for name, value in [*enumerate(remote.args), *remote.kwargs.items()]:
            try:
                cloudpickle.dumps(value)
            except Exception:
                raise SerializationError(
                    f"argument {name!r} of task {remote.task.task_name!r}",
                    type(value).__name__,
                    str(exc),
                ) from exc
        raise SerializationError(f"task {remote.task.task_name!r}", "Task", str(exc)) from exc


def run_remote(payload: bytes) -> bytes:
    """Child-process entry point: run the call, return a packed :class:`RemoteOutcome`."""
    import cloudpickle

    remote: RemoteCall = cloudpickle.loads(payload)
    task = remote.task
    setup_logging(task.settings)
    sink = CollectingSink()
    record = remote.record
    state = task.run(remote.args, remote.kwargs, record, sink)
    outcome = RemoteOutcome(
        record,
        state.type,
        state.name,
        state.message,
        state.data,
        portable_exception(state.exception),
        sink,
    )
    try:
        packed: bytes = cloudpickle.dumps(outcome)
        return packed
    except Exception as exc:
        error = SerializationError(
            f"result of task {task.task_name!r}", type(state.data).__name__, str(exc)
        )
        failed = task.fail(record, sink, error)
        outcome = RemoteOutcome(record, failed.type, failed.name, failed.message, None, error, sink)
        refused: bytes = cloudpickle.dumps(outcome)
        return refused


def unpack_outcome(payload: bytes) -> RemoteOutcome:
    import cloudpickle

    outcome: RemoteOutcome = cloudpickle.loads(payload)
    return outcome


def portable_exception(exc: BaseException | None) -> BaseException | None:
    """The exception itself if it pickles, else a RuntimeError carrying its text."""
    if exc is None:
        return None
    import cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return RuntimeError(f"{type(exc).__name__}: {exc}\n{text}")
