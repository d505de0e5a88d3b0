"""Running a task call in another process and bringing back what it recorded.

The child executes the call with the ordinary task engine, reporting into a
:class:`CollectingSink`; the parent replays the collected records into the
flow's backend, so a task in another process is recorded exactly like one in a
thread (states with their real timestamps, logs, retries).
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.errors import SerializationError
from sluice.results.owners import owner_of_task_run
from sluice.schemas import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.states import Failed, State, StateType

if TYPE_CHECKING:
    from sluice.backend.protocol import RecordSink
    from sluice.settings import Settings
    from sluice.tasks import Task


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

    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    record: TaskRunRecord
    log_prints: bool
    settings: Settings


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
    import cloudpickle

    try:
        return cloudpickle.dumps(remote)
    except Exception as exc:
        for name, value in [*enumerate(remote.args), *remote.kwargs.items()]:
            try:
                cloudpickle.dumps(value)
            except Exception:
                raise SerializationError(
                    f"argument {name!r} of task {remote.task.name!r}",
                    type(value).__name__,
                    str(exc),
                ) from exc
        raise SerializationError(f"task {remote.task.name!r}", "Task", str(exc)) from exc


def run_remote(payload: bytes) -> bytes:
    """Child-process entry point: run the call, return a packed :class:`RemoteOutcome`."""
    import cloudpickle

    from sluice.engine.task_engine import TaskCall, run_task_sync
    from sluice.logging.handlers import setup_logging

    remote: RemoteCall = cloudpickle.loads(payload)
    setup_logging(remote.settings)
    sink = CollectingSink()
    call = TaskCall(
        remote.task,
        remote.args,
        remote.kwargs,
        remote.record,
        sink,
        None,
        [],
        remote.log_prints,
        remote.settings,
        prepared=True,
    )
    state = run_task_sync(call)
    outcome = RemoteOutcome(
        call.record,
        state.type,
        state.name,
        state.message,
        state.data,
        _portable_exception(state.exception),
        sink,
    )
    try:
        return cloudpickle.dumps(outcome)
    except Exception as exc:
        error = SerializationError(
            f"result of task {remote.task.name!r}", type(state.data).__name__, str(exc)
        )
        failed = call.write(
            Failed(message=str(error), exception=error),
            {"exception_type": "sluice.errors.SerializationError"},
        )
        outcome = RemoteOutcome(
            call.record, failed.type, failed.name, failed.message, None, error, sink
        )
        return cloudpickle.dumps(outcome)


def unpack_outcome(payload: bytes) -> RemoteOutcome:
    import cloudpickle

    return cloudpickle.loads(payload)


def _portable_exception(exc: BaseException | None) -> BaseException | None:
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
