"""Task runs on a Dask cluster: a temporary ``LocalCluster``, a running
scheduler, or any cluster class (``dask_jobqueue.SLURMCluster`` ...).

Each submitted call becomes one Dask task (see
:mod:`sluice.task_runners.dask_worker`). Futures passed between tasks stay on
the cluster: a downstream Dask task receives its upstream's Dask future, so
data moves worker to worker, never through the flow's process unless the flow
asks for a result. States and logs come back as Dask events and are replayed
into the flow's backend, in their order and with their real timestamps.

Dask is imported only when a runner starts; ``import sluice.task_runners``
does not import it.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import importlib
import importlib.util
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigurationError, SerializationError, SluiceError
from sluice.futures import SluiceFuture
from sluice.states import NOT_LOADED, Cancelled, Crashed, Failed, State, StateType
from sluice.task_runners.base import TaskRunner
from sluice.utilities.annotations import allow_failure

if TYPE_CHECKING:
    from sluice.engine.task_engine import TaskCall
    from sluice.schemas import TaskRunRecord
    from sluice.tasks import Task

#: how deep into nested lists/dicts futures are looked for (as the engine does)
_MAX_DEPTH = 4
#: how long the runner waits for a Dask cluster's running calls when the flow ends
_SHUTDOWN_GRACE = 30.0

logger = logging.getLogger("sluice.dask")


class DaskTaskRunner(TaskRunner):
    """Run submitted tasks on a Dask cluster.

    Without ``address`` each flow run starts a temporary cluster (a
    ``distributed.LocalCluster`` unless ``cluster_class`` says otherwise) and
    closes it when the run ends. With ``address`` it connects to a running
    scheduler and leaves it running.

    A ``LocalCluster`` starts its workers as new Python processes that import
    your script again: guard the flow call with ``if __name__ == "__main__":``.

    Args:
        address: a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
        cluster_class: the cluster to create, as a class or an importable
            ``"module.Class"`` path (``"dask_jobqueue.SLURMCluster"``).
        cluster_kwargs: keyword arguments for the cluster class, e.g.
            ``{"n_workers": 4, "threads_per_worker": 1}``.
        adapt_kwargs: when given, ``cluster.adapt(**adapt_kwargs)`` makes the
            cluster scale itself (e.g. ``{"minimum": 1, "maximum": 10}``).
        client_kwargs: extra keyword arguments for ``distributed.Client``.

    Raises:
        ValueError: ``address`` given together with cluster options, or a
            ``cluster_class`` string that is not a ``"module.Class"`` path.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | type | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if importlib.util.find_spec("distributed") is None:
            raise ImportError("DaskTaskRunner needs Dask: pip install 'sluice[dask]'")
        if address is not None and (cluster_class or cluster_kwargs or adapt_kwargs):
            raise ValueError(
                "DaskTaskRunner: pass either address= (a running scheduler) or cluster "
                "options (cluster_class=, cluster_kwargs=, adapt_kwargs=), not both"
            )
        if isinstance(cluster_class, str) and "." not in cluster_class.strip("."):
            raise ValueError(
                f"DaskTaskRunner: cluster_class {cluster_class!r} is not a 'module.Class' path"
            )
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = None if adapt_kwargs is None else dict(adapt_kwargs)
        self.client_kwargs = dict(client_kwargs or {})
        self._session: _DaskSession | None = None

    def duplicate(self) -> DaskTaskRunner:
        return type(self)(
            self.address,
            self.cluster_class,
            self.cluster_kwargs,
            self.adapt_kwargs,
            self.client_kwargs,
        )

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the started runner (for Dask work of your own)."""
        if self._session is None:
            raise SluiceError("The DaskTaskRunner has not been started")
        return self._session.client

    def start(self) -> None:
        if self._session is None:
            self._session = _DaskSession.open(self)

    def _shutdown_executor(self, cancel_pending: bool) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.close(cancel_pending)

    def _execute(self, call: TaskCall) -> cf.Future[State]:
        if self._session is None:
            self.start()
        assert self._session is not None
        return self._session.execute(call)

    def __repr__(self) -> str:
        if self.address is not None:
            return f"DaskTaskRunner(address={self.address!r})"
        return (
            f"DaskTaskRunner(cluster_class={self.cluster_class!r}, "
            f"cluster_kwargs={self.cluster_kwargs!r}, adapt_kwargs={self.adapt_kwargs!r})"
        )


def resolve_cluster_class(cluster_class: str | type | None) -> type:
    """The cluster class to create (``distributed.LocalCluster`` by default).

    Raises:
        ConfigurationError: the ``"module.Class"`` path cannot be imported.
    """
    if cluster_class is None:
        from distributed import LocalCluster

        return LocalCluster
    if isinstance(cluster_class, type):
        return cluster_class
    module_name, _, class_name = cluster_class.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"DaskTaskRunner: cannot import {module_name!r} for cluster_class "
            f"{cluster_class!r}: {exc}"
        ) from exc
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ConfigurationError(
            f"DaskTaskRunner: {module_name!r} has no class {class_name!r} (cluster_class)"
        )
    return found


@dataclass
class _Pending:
    """A call sent to Dask whose final state has not come back yet."""

    call: TaskCall
    result: cf.Future[State]
    held: Any
    latest: TaskRunRecord | None = None


@dataclass
class _Inputs:
    """A call's arguments with upstream futures swapped for Dask-side slots."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    held: list[Any] = field(default_factory=list)
    slot_of: dict[str, Any] = field(default_factory=dict)


class _UpstreamFailed(Exception):
    def __init__(self, future: SluiceFuture[Any]) -> None:
        self.future = future


class _DaskSession:
    """One started runner: the client, maybe its cluster, and the calls in flight.

    Records arrive as Dask events on the client's event loop; one settler
    thread replays them into the flow's backend and resolves the calls'
    futures, so the event loop never waits on the store and every call's
    records are applied in order.
    """

    def __init__(self, runner: DaskTaskRunner, client: Any, cluster: Any) -> None:
        self.runner = runner
        self.client = client
        self.cluster = cluster
        self.topic = f"sluice-records-{uuid.uuid4().hex}"
        self._pending: dict[str, _Pending] = {}
        self._held: dict[str, Any] = {}
        self._tasks: dict[int, Task[..., Any]] = {}
        self._lock = threading.Lock()
        self._inbox: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._settler = threading.Thread(target=self._settle_loop, name="sluice-dask-settler")
        self._preparer: cf.ThreadPoolExecutor | None = None

    @classmethod
    def open(cls, runner: DaskTaskRunner) -> _DaskSession:
        from distributed import Client

        from sluice.task_runners.dask_worker import RecomputeGuard

        cluster = None
        if runner.address is not None:
            client = Client(runner.address, set_as_default=False, **runner.client_kwargs)
        else:
            cluster = resolve_cluster_class(runner.cluster_class)(**runner.cluster_kwargs)
            try:
                if runner.adapt_kwargs is not None:
                    cluster.adapt(**runner.adapt_kwargs)
                client = Client(cluster, set_as_default=False, **runner.client_kwargs)
            except BaseException:
                cluster.close()
                raise
        session = cls(runner, client, cluster)
        client.subscribe_topic(session.topic, session._on_event)
        client.register_plugin(RecomputeGuard(time.time()))
        session._settler.start()
        return session

    # -- sending calls ---------------------------------------------------------------
    def execute(self, call: TaskCall) -> cf.Future[State]:
        result: cf.Future[State] = cf.Future()
        if call.task.effective_cache_policy is not None and call.upstream:
            # The cache key hashes the inputs: fetch them, off the settler thread.
            if self._preparer is None:
                with self._lock:
                    if self._preparer is None:
                        self._preparer = cf.ThreadPoolExecutor(4, "sluice-dask-prepare")
            self._preparer.submit(self._prepare_locally_and_send, call, result)
            return result
        self._prepare_and_send(call, result)
        return result

    def _prepare_and_send(self, call: TaskCall, result: cf.Future[State]) -> None:
        from sluice.engine.task_engine import TaskAttempts

        attempts = TaskAttempts(call)
        try:
            inputs = self._swap_inputs(call)
        except _UpstreamFailed as failed:
            state = Failed(
                name="UpstreamFailed",
                message=f"Upstream task run {failed.future.task_run_id} did not complete",
            )
            result.set_result(attempts.finish(state))
            return
        call.upstream = []
        early = attempts.prepare()  # the cache, when the inputs are all local
        if early is not None:
            result.set_result(early)
            return
        self._send(call, inputs, result)

    def _prepare_locally_and_send(self, call: TaskCall, result: cf.Future[State]) -> None:
        from sluice.engine.task_engine import TaskAttempts

        try:
            early = TaskAttempts(call).prepare()
        except BaseException as exc:
            result.set_exception(exc)
            return
        if early is not None:
            result.set_result(early)
            return
        self._send(call, _Inputs(call.args, call.kwargs), result)

    def _swap_inputs(self, call: TaskCall) -> _Inputs:
        inputs = _Inputs(call.args, call.kwargs)
        if not call.upstream:
            return inputs
        inputs.args = tuple(self._swap(v, 0, False, inputs) for v in call.args)
        inputs.kwargs = {k: self._swap(v, 0, False, inputs) for k, v in call.kwargs.items()}
        return inputs

    def _swap(self, value: Any, depth: int, tolerate: bool, inputs: _Inputs) -> Any:
        from sluice.task_runners.dask_worker import UpstreamSlot

        if isinstance(value, SluiceFuture):
            state = value.state
            if state.is_completed():
                held = self._held.get(value.task_run_id)
                if held is None:
                    return state.result()  # replayed or cached: the value is local
                slot = inputs.slot_of.get(value.task_run_id)
                if slot is None:
                    slot = inputs.slot_of[value.task_run_id] = UpstreamSlot(len(inputs.held))
                    inputs.held.append(held)
                return slot
            if tolerate:
                return state.result(raise_on_failure=False)
            raise _UpstreamFailed(value)
        if isinstance(value, allow_failure):
            return self._swap(value.value, depth, True, inputs)
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, list):
            return [self._swap(v, depth + 1, tolerate, inputs) for v in value]
        if isinstance(value, tuple):
            items = [self._swap(v, depth + 1, tolerate, inputs) for v in value]
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        if isinstance(value, (set, frozenset)):
            return type(value)(self._swap(v, depth + 1, tolerate, inputs) for v in value)
        if isinstance(value, dict):
            return {k: self._swap(v, depth + 1, tolerate, inputs) for k, v in value.items()}
        return value

    def _send(self, call: TaskCall, inputs: _Inputs, result: cf.Future[State]) -> None:
        from sluice.engine.task_engine import record_final
        from sluice.task_runners.dask_worker import DaskTaskSpec, run_dask_task

        spec = DaskTaskSpec(
            self._task_for(call),
            inputs.args,
            inputs.kwargs,
            call.record,
            call.log_prints,
            call.settings,
            self.topic,
        )
        record_id = call.record.id
        pending = _Pending(call, result, None)
        with self._lock:
            self._pending[record_id] = pending
        try:
            held = self.client.submit(
                run_dask_task, spec, inputs.held, key=f"{call.task.name}-{record_id}", pure=False
            )
        except Exception as exc:
            with self._lock:
                self._pending.pop(record_id, None)
            error = SerializationError(f"task {call.task.name!r} or its arguments", "", str(exc))
            result.set_result(record_final(call, Failed(message=str(error), exception=error)))
            return
        pending.held = held
        with self._lock:
            self._held[record_id] = held
        held.add_done_callback(functools.partial(self._on_dask_done, record_id))

    def _task_for(self, call: TaskCall) -> Task[..., Any]:
        """The task with its flow's result options made explicit (workers have
        no flow context to inherit them from); one copy per task per run."""
        from sluice.task_runners.processes import _with_flow_result_options

        task = self._tasks.get(id(call.task))
        if task is None:
            task = self._tasks[id(call.task)] = _with_flow_result_options(call)
        return task

    # -- results coming back ---------------------------------------------------------
    def _on_event(self, event: tuple[float, bytes]) -> None:
        self._inbox.put(("event", event[1]))

    def _on_dask_done(self, record_id: str, _held: Any) -> None:
        self._inbox.put(("done", record_id))

    def _settle_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            kind, payload = item
            try:
                if kind == "event":
                    self._apply_event(payload)
                else:
                    self._apply_done(payload)
            except BaseException:
                logger.exception("Sluice could not settle a Dask task's outcome")

    def _apply_event(self, payload: bytes) -> None:
        from sluice.task_runners.dask_worker import unpack_event

        for record_id, records, outcome in unpack_event(payload):
            with self._lock:
                pending = self._pending.get(record_id)
            if pending is None:
                if records:
                    logger.warning(
                        "Ignoring the records of a second run of task run %s: Dask ran it "
                        "again after it had finished",
                        record_id,
                    )
                continue
            sink = pending.call.sink
            for kind, item, state in records:
                if kind == "task_run":
                    sink.write_task_run(item, state)
                    pending.latest = item
                elif kind == "flow_run":
                    sink.write_flow_run(item, state)
                else:
                    sink.write_logs(item)
            if outcome is not None:
                self._finish(pending, outcome)

    def _finish(self, pending: _Pending, outcome: Any) -> None:
        call = pending.call
        call.record = outcome.record
        state: State
        if outcome.state_type is StateType.COMPLETED:
            state = DaskHeldState(outcome.state_name, outcome.message, outcome.record, pending.held)
            flow_ctx = call.flow_ctx
            if flow_ctx is not None and flow_ctx.keep_journal:
                flow_ctx.journal.record(call.record)
        else:
            state = outcome.state()
        state.run_id = call.record.id
        with self._lock:
            self._pending.pop(call.record.id, None)
        pending.result.set_result(state)

    def _apply_done(self, record_id: str) -> None:
        with self._lock:
            pending = self._pending.get(record_id)
        if pending is None:
            return
        held = pending.held
        if held.status == "finished":
            # The records' event never arrived (it always precedes this): the
            # Dask value keeps a copy of them.
            records = self.client.submit(_records_of, held, pure=False).result()
            if records is not None:
                self._apply_event(records)
                return
            self._crash(pending, "The Dask task finished without reporting an outcome")
        elif held.status == "cancelled":
            self._crash(pending, "", cancelled=True)
        else:
            self._crash(pending, _describe_dask_error(held.exception()), held.exception())

    def _crash(
        self,
        pending: _Pending,
        message: str,
        exc: BaseException | None = None,
        cancelled: bool = False,
    ) -> None:
        from sluice.engine.task_engine import record_final

        call = pending.call
        if pending.latest is not None:
            call.record = pending.latest
        with self._lock:
            self._pending.pop(call.record.id, None)
        if cancelled:
            state = Cancelled(message="Cancelled on the Dask cluster")
        else:
            state = Crashed(message=message, exception=exc)
        pending.result.set_result(record_final(call, state))

    # -- closing ---------------------------------------------------------------------
    def close(self, cancel_pending: bool) -> None:
        with self._lock:
            pending = list(self._pending.values())
        try:
            if cancel_pending and pending:
                self.client.cancel([p.held for p in pending if p.held is not None])
            cf.wait([p.result for p in pending], timeout=_SHUTDOWN_GRACE)
        finally:
            self._inbox.put(None)
            self._settler.join()
            if self._preparer is not None:
                self._preparer.shutdown(wait=True)
            with self._lock:
                self._held.clear()
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def _records_of(value: Any) -> bytes | None:
    return value.records


def _describe_dask_error(exc: BaseException | None) -> str:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return (
            f"The Dask workers running this task run died ({exc}); Dask stopped "
            "rescheduling it (KilledWorker)"
        )
    return f"The Dask task failed outside the task engine: {exc!r}"


class DaskHeldState(State):
    """A Completed state whose value stays in Dask worker memory until asked for.

    ``data`` fetches the value from the cluster on first use; once the runner
    has closed its client, the persisted result (if any) is loaded instead.
    """

    __slots__ = ("_held",)

    def __init__(self, name: str, message: str | None, record: TaskRunRecord, held: Any) -> None:
        super().__init__(StateType.COMPLETED, name, message, NOT_LOADED, result_ref=record.result)
        self._held = held

    @property
    def data(self) -> Any:
        if self._data is NOT_LOADED:
            self._data = self._fetch()
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    def _fetch(self) -> Any:
        held = self._held
        if held is not None and held.client.status == "running":
            return held.result().data
        if self.result_ref is not None:
            from sluice.results.store import load_result

            return load_result(self.result_ref)
        raise SluiceError(
            "The task's result was held by the Dask cluster, which is closed, and it "
            "was not persisted (persist_result=False)"
        )

    def forget_data(self) -> None:
        self._data = NOT_LOADED
