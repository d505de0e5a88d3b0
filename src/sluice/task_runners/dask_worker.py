"""The Dask side of :class:`~sluice.task_runners.dask.DaskTaskRunner`.

Each submitted task call becomes one Dask task running :func:`run_dask_task`
on a worker. The wrapper runs the call with the ordinary task engine; what the
engine records (states with their real timestamps, logs) travels back to the
flow's process as Dask *events* on the runner's topic, while the return value
stays in the worker's memory, inside a :class:`TaskValue`, for downstream
tasks to receive worker-to-worker.

Events go through the worker's batched stream to the scheduler, the same
ordered stream that reports the task as finished, so the flow's client sees a
task's records before it sees the task done.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from sluice.backend.factory import get_backend
from sluice.errors import NotFoundError
from sluice.logging.handlers import setup_logging
from sluice.results.owners import owner_of_task_run
from sluice.results.store import is_inline, result_store_for
from sluice.task_runners.remote import (
    CollectingSink,
    PortableTask,
    RemoteOutcome,
    portable_exception,
)
from sluice.utilities.annotations import allow_failure

if TYPE_CHECKING:
    from sluice.schemas import TaskRunRecord
    from sluice.settings import Settings

#: how deep into nested lists/dicts upstream slots are looked for (as the engine does)
_MAX_DEPTH = 4
#: a running task's records are sent at least this often (seconds), so long
#: tasks show Running and their logs while they run
STREAM_INTERVAL = 1.0

logger = logging.getLogger("sluice.dask")


@dataclass(frozen=True)
class UpstreamSlot:
    """Stands in an argument for the value of the ``index``-th upstream Dask future."""

    index: int


@dataclass
class DaskTaskSpec:
    """What a worker needs to run one task call.

    ``static`` is the packed ``(task, topic)`` every call of the task shares
    (the task as a :class:`~sluice.task_runners.remote.PortableTask`): packed
    once by the flow, unpacked once per worker.
    """

    static_key: str
    static: bytes
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    record: TaskRunRecord


@dataclass
class _Static:
    task: PortableTask
    topic: str


_statics: dict[str, _Static] = {}
_MAX_STATICS = 256


def _static_of(spec: DaskTaskSpec) -> _Static:
    found = _statics.get(spec.static_key)
    if found is None:
        if len(_statics) >= _MAX_STATICS:
            _statics.pop(next(iter(_statics)))
        found = _statics[spec.static_key] = _Static(*cloudpickle.loads(spec.static))
    return found


class TaskValue:
    """What a Dask task holds in worker memory: the task's return value, and the
    packed final records (fetched by the flow only if their event went missing)."""

    __slots__ = ("data", "records")

    def __init__(self, data: Any, records: bytes | None) -> None:
        self.data = data
        self.records = records


#: One event message: packed ``[(task_run_id, records, outcome or None, carries_data)]``;
#: ``outcome`` is set on a task's last message, and holds the return value when
#: ``carries_data`` (small values) -- larger ones stay on the worker.
EventItem = tuple[str, list[tuple[str, Any, Any]], "RemoteOutcome | None", bool]


def pack_event(items: list[EventItem]) -> bytes:
    # Records are plain dataclasses: the C pickler is several times faster than
    # cloudpickle, which is needed only for values of classes defined in __main__.
    try:
        return pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        blob: bytes = cloudpickle.dumps(items)
        return blob


def unpack_event(payload: bytes) -> list[EventItem]:
    items: list[EventItem] = pickle.loads(payload)
    return items


def run_dask_task(spec: DaskTaskSpec, upstream: list[TaskValue]) -> TaskValue:
    """Worker entry point: run one task call; its value, its records sent as events."""
    static = _static_of(spec)
    args = tuple(fill_slots(v, upstream, 0) for v in spec.args)
    kwargs = {k: fill_slots(v, upstream, 0) for k, v in spec.kwargs.items()}
    recorded = _recorded_value(static, spec.record.id, args, kwargs)
    if recorded is not None:
        return recorded
    _setup_logging_once(static.task.settings)
    topic, record = static.topic, spec.record
    sink = _outbox().open(topic, record.id)
    try:
        state = static.task.run(args, kwargs, record, sink)
    except BaseException:
        # The engine re-raises engine signals after recording a final state;
        # send what was recorded before Dask reports the error.
        _outbox().close(topic, record.id, None)
        raise
    data = state.data if state.is_completed() else None
    small = state.is_completed() and _is_small(data, record.result)
    outcome = RemoteOutcome(
        record,
        state.type,
        state.name,
        state.message,
        data if small else None,
        portable_exception(state.exception),
    )
    packed = _outbox().close(topic, record.id, outcome, small)
    return TaskValue(data, packed)


_SMALL_TYPES = frozenset({int, float, bool, type(None)})
_SMALL_BYTES = 65536


def _is_small(value: Any, result_ref: str | None) -> bool:
    """Whether the value travels back with the records (saving the flow a fetch).

    A result persisted inline is small by definition; without a stored result,
    only scalars and short strings qualify (measuring anything else would mean
    serializing it here).
    """
    if result_ref is not None:
        return is_inline(result_ref)
    kind = type(value)
    if kind in _SMALL_TYPES:
        return True
    return kind in (str, bytes) and len(value) <= _SMALL_BYTES


def fill_slots(value: Any, upstream: list[TaskValue], depth: int) -> Any:
    """``value`` with every :class:`UpstreamSlot` replaced by its upstream's value."""
    if isinstance(value, UpstreamSlot):
        return upstream[value.index].data
    if isinstance(value, allow_failure):
        return fill_slots(value.value, upstream, depth)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, list):
        return [fill_slots(v, upstream, depth + 1) for v in value]
    if isinstance(value, tuple):
        items = [fill_slots(v, upstream, depth + 1) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, (set, frozenset)):
        return type(value)(fill_slots(v, upstream, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: fill_slots(v, upstream, depth + 1) for k, v in value.items()}
    return value


# -- never twice once recorded ----------------------------------------------------
def _recorded_value(
    static: _Static, task_run_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> TaskValue | None:
    """The stored value of a call whose completion is already recorded.

    Dask recomputes a lost result from its lineage when the worker holding it
    dies. The flow already recorded that run as Completed, so its function must
    not run again: the value comes back from the result store instead.
    """
    if not _is_recompute():
        return None
    settings = static.task.settings
    stored = _stored_run(settings, task_run_id)
    if stored is None or stored.state_type.value != "COMPLETED":
        return None
    if stored.result is not None:
        store = result_store_for(settings.home, settings.results.inline_threshold)
        logger.info("Task run %s was recorded Completed; reloading its stored result", stored.id)
        return TaskValue(store.load(stored.result, owner_of_task_run(stored)), None)
    # No stored value to return (persist_result=False): computing it again is
    # the only way to give downstream tasks their input; nothing is recorded.
    logger.warning(
        "Task run %s was recorded Completed but its result was not persisted; "
        "computing it again for Dask without recording it",
        stored.id,
    )
    return TaskValue(static.task.fn(*args, **kwargs), None)


def _is_recompute() -> bool:
    """Whether Dask may be running this task for the second time.

    Dask runs a finished task again only after the worker holding its result
    left the cluster. :class:`RecomputeGuard` tells each worker when that
    happened; until then no call is a recomputation and the store is not asked.
    """
    try:
        worker = get_worker()
    except ValueError:
        return True
    watch = getattr(worker, _WATCH_ATTRIBUTE, None)
    # A worker the guard was never installed on cannot tell: it always asks.
    return watch is None or watch.lost


_WATCH_ATTRIBUTE = "_sluice_lost_a_peer"


class _LossWatch:
    def __init__(self) -> None:
        self.lost = False


class RecomputeGuard(WorkerPlugin):
    """A Dask worker plugin marking workers that may be asked to recompute.

    Every worker is told when a peer leaves the cluster ("remove-worker"); a
    worker that joins after the guard was registered may replace a lost one.
    Either way its later task calls check the store before running.

    Args:
        registered_at: when the flow registered the guard (``time.time()``).
    """

    name = "sluice-recompute-guard"
    #: workers set up later than this after registration are treated as replacements
    late_join_seconds = 5.0

    def __init__(self, registered_at: float) -> None:
        super().__init__()
        self.registered_at = registered_at

    def setup(self, worker: Any) -> None:
        watch = getattr(worker, _WATCH_ATTRIBUTE, None)
        if watch is None:
            watch = _LossWatch()
            setattr(worker, _WATCH_ATTRIBUTE, watch)
            handlers = worker.stream_handlers
            original = handlers.get("remove-worker")
            if original is not None:

                def on_remove_worker(**kwargs: Any) -> Any:
                    watch.lost = True
                    return original(**kwargs)

                handlers["remove-worker"] = on_remove_worker
        if time.time() - self.registered_at > self.late_join_seconds:
            watch.lost = True


def _stored_run(settings: Settings, task_run_id: str) -> Any:
    """The task run as the store holds it, if this worker can reach the store."""
    url = settings.resolved_database_url
    local_file = not settings.api_url and url.startswith("sqlite:///")
    # A worker on another machine has no such file; opening it would create an
    # empty store there.
    if local_file and not Path(url[len("sqlite:///") :]).exists():
        return None
    try:
        return get_backend(settings).read_task_run(task_run_id)
    except NotFoundError:
        return None


_logging_ready: set[int] = set()


def _setup_logging_once(settings: Settings) -> None:
    if id(settings) in _logging_ready:
        return
    setup_logging(settings)
    _logging_ready.add(id(settings))


# -- records back to the flow --------------------------------------------------------
class StreamingSink(CollectingSink):
    """Collects one task run's records; the outbox sends them in batches."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()


class _Outbox:
    """This worker process's running tasks' records, sent as Dask events.

    A task's records go in one event when it ends; a background thread sends
    those of tasks running longer than :data:`STREAM_INTERVAL` meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], StreamingSink] = {}
        self._thread: threading.Thread | None = None

    def open(self, topic: str, task_run_id: str) -> StreamingSink:
        sink = StreamingSink()
        with self._lock:
            self._open[(topic, task_run_id)] = sink
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._stream, name="sluice-dask-outbox", daemon=True
                )
                self._thread.start()
        return sink

    def close(
        self,
        topic: str,
        task_run_id: str,
        outcome: RemoteOutcome | None,
        carries_data: bool = False,
    ) -> bytes:
        with self._lock:
            sink = self._open.pop((topic, task_run_id))
            records, sink.records = sink.records, []
        payload = pack_event([(task_run_id, records, outcome, carries_data)])
        _send(topic, payload)
        return payload

    def _stream(self) -> None:
        while True:
            time.sleep(STREAM_INTERVAL / 2)
            now = time.monotonic()
            by_topic: dict[str, list[EventItem]] = {}
            with self._lock:
                for (topic, task_run_id), sink in self._open.items():
                    if sink.records and now - sink.started >= STREAM_INTERVAL:
                        records, sink.records = sink.records, []
                        by_topic.setdefault(topic, []).append((task_run_id, records, None, False))
            for topic, items in by_topic.items():
                _send(topic, pack_event(items))


def _send(topic: str, payload: bytes) -> None:
    # Not on a worker (ValueError: a direct call in tests), the value's packed
    # records are the only copy, which the flow side falls back to.
    with contextlib.suppress(ValueError):
        get_worker().log_event(topic, payload)


_outbox_instance: _Outbox | None = None
_outbox_lock = threading.Lock()


def _outbox() -> _Outbox:
    global _outbox_instance
    if _outbox_instance is None:
        with _outbox_lock:
            if _outbox_instance is None:
                _outbox_instance = _Outbox()
    return _outbox_instance
