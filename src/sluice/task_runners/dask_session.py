"""A started :class:`~sluice.task_runners.dask.DaskTaskRunner`: its client, maybe
its cluster, and the calls in flight.

Calls go to Dask in batches (one graph per batch, as ``client.map`` sends
them), from a sender thread; their records come back as Dask events, which
one settler thread replays into the flow's backend before resolving the
calls' futures. The client's event loop never waits on the store, and every
call's records are applied in order.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle
from distributed import Client, KilledWorker

from sluice.errors import SerializationError
from sluice.futures import SluiceFuture
from sluice.states import Cancelled, Crashed, Failed, State, StateType
from sluice.task_runners.base import RunnerCall
from sluice.task_runners.dask import DaskHeldState, resolve_cluster_class
from sluice.task_runners.dask_worker import (
    DaskTaskSpec,
    RecomputeGuard,
    UpstreamSlot,
    run_dask_task,
    unpack_event,
)
from sluice.utilities.annotations import (
    BaseAnnotation,
    allow_failure,
    has_annotations,
    opaque,
    quote,
)

if TYPE_CHECKING:
    from sluice.schemas import TaskRunRecord
    from sluice.task_runners.dask import DaskTaskRunner
    from sluice.task_runners.remote import PortableTask

#: how deep into nested lists/dicts futures are looked for (as the engine does)
_MAX_DEPTH = 4
#: how long the runner waits for a Dask cluster's running calls when the flow ends
_SHUTDOWN_GRACE = 30.0

logger = logging.getLogger("sluice.dask")


@dataclass
class _Pending:
    """A call sent to Dask whose final state has not come back yet."""

    call: RunnerCall
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


class _NotReady(Exception):
    def __init__(self, state: State) -> None:
        self.state = state


class DaskSession:
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
        #: the packed task of each PortableTask sent (kept: its id is the key)
        self._statics: dict[int, tuple[PortableTask, str, bytes]] = {}
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._to_send: list[tuple[DaskTaskSpec, list[Any], _Pending]] = []
        self._send_wakeup = threading.Event()
        self._sender = threading.Thread(
            target=self._send_loop, name="sluice-dask-sender", daemon=True
        )
        self._closing = False
        self._inbox: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._settler = threading.Thread(
            target=self._settle_loop, name="sluice-dask-settler", daemon=True
        )
        self._preparer: cf.ThreadPoolExecutor | None = None

    @classmethod
    def open(cls, runner: DaskTaskRunner) -> DaskSession:
        cluster = None
        if runner.address is not None:
            client = Client(runner.address, set_as_default=False, **runner.client_kwargs)
        else:
            cluster = _start_cluster(runner)
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
        session._sender.start()
        return session

    # -- sending calls ---------------------------------------------------------------
    def execute(self, call: RunnerCall) -> cf.Future[State]:
        result: cf.Future[State] = cf.Future()
        if call.caches and call.upstream:
            # The cache key hashes the inputs: fetch them, off the settler thread.
            if self._preparer is None:
                with self._lock:
                    if self._preparer is None:
                        self._preparer = cf.ThreadPoolExecutor(4, "sluice-dask-prepare")
            self._preparer.submit(self._prepare_locally_and_send, call, result)
            return result
        self._prepare_and_send(call, result)
        return result

    def _prepare_and_send(self, call: RunnerCall, result: cf.Future[State]) -> None:
        try:
            inputs = self._swap_inputs(call)
        except _NotReady as unready:
            result.set_result(call.finish_not_ready(unready.state))
            return
        unready_state = call.unready_wait_for()
        if unready_state is not None:
            result.set_result(call.finish_not_ready(unready_state))
            return
        call.upstream = []
        early = call.prepare()  # the cache, when the inputs are all local
        if early is not None:
            result.set_result(early)
            return
        self._send(call, inputs, result)

    def _prepare_locally_and_send(self, call: RunnerCall, result: cf.Future[State]) -> None:
        try:
            early = call.prepare()
        except BaseException as exc:
            result.set_exception(exc)
            return
        if early is not None:
            result.set_result(early)
            return
        self._send(call, _Inputs(call.args, call.kwargs), result)

    def _swap_inputs(self, call: RunnerCall) -> _Inputs:
        inputs = _Inputs(call.args, call.kwargs)
        if not call.upstream and not has_annotations(call.args, call.kwargs):
            return inputs
        inputs.args = tuple(self._swap(v, 0, False, inputs) for v in call.args)
        inputs.kwargs = {k: self._swap(v, 0, False, inputs) for k, v in call.kwargs.items()}
        return inputs

    def _swap(self, value: Any, depth: int, tolerate: bool, inputs: _Inputs) -> Any:
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
            return self._not_completed(state, tolerate)
        if isinstance(value, State):
            return value.result() if value.is_completed() else self._not_completed(value, tolerate)
        if isinstance(value, allow_failure):
            return self._swap(value.value, depth, True, inputs)
        if isinstance(value, quote):
            return value.value
        if isinstance(value, opaque):
            return self._swap(value.value, _MAX_DEPTH, tolerate, inputs)
        if isinstance(value, BaseAnnotation):
            return self._swap(value.value, depth, tolerate, inputs)
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

    @staticmethod
    def _not_completed(state: State, tolerate: bool) -> Any:
        """A Failed upstream's exception under ``allow_failure``; else the call is NotReady."""
        if tolerate and state.is_failed():
            return state.result(raise_on_failure=False)
        raise _NotReady(state)

    def _send(self, call: RunnerCall, inputs: _Inputs, result: cf.Future[State]) -> None:
        """Queue the call for the sender thread."""
        try:
            static_key, static = self._static_for(call)
        except SerializationError as exc:
            result.set_result(call.finish(Failed(message=str(exc), exception=exc)))
            return
        spec = DaskTaskSpec(static_key, static, inputs.args, inputs.kwargs, call.record)
        pending = _Pending(call, result, None)
        with self._queue_lock:
            self._to_send.append((spec, inputs.held, pending))
            first = len(self._to_send) == 1
        if first:
            self._send_wakeup.set()

    def _send_loop(self) -> None:
        while True:
            self._send_wakeup.wait()
            self._send_wakeup.clear()
            with self._queue_lock:
                batch, self._to_send = self._to_send, []
            if batch:
                try:
                    self._send_batch(batch)
                except BaseException:
                    logger.exception("Sluice could not send task runs to Dask")
            elif self._closing:
                return

    def _send_batch(self, batch: list[tuple[DaskTaskSpec, list[Any], _Pending]]) -> None:
        """Submit calls as one Dask graph (one scheduler message, as ``client.map``)."""
        keys = [f"{p.call.record.task_name}-{p.call.record.id}" for _, _, p in batch]
        # Held under the lock: the settler cannot see a call's outcome before
        # its Dask future is known.
        with self._lock:
            for _, _, pending in batch:
                self._pending[pending.call.record.id] = pending
            try:
                futures = self.client.map(
                    run_dask_task,
                    [spec for spec, _, _ in batch],
                    [held for _, held, _ in batch],
                    key=keys,
                    pure=False,
                )
            except Exception:
                futures = [
                    self._submit_one(item, key) for item, key in zip(batch, keys, strict=True)
                ]
            for (_, _, pending), future in zip(batch, futures, strict=True):
                if future is None:
                    continue
                pending.held = future
                self._held[pending.call.record.id] = future
        for (_, _, pending), future in zip(batch, futures, strict=True):
            if future is not None:
                future.add_done_callback(
                    functools.partial(self._on_dask_done, pending.call.record.id)
                )

    def _submit_one(self, item: tuple[DaskTaskSpec, list[Any], _Pending], key: str) -> Any:
        """Submit one call of a batch that failed as a whole; None if it cannot be sent."""
        spec, held, pending = item
        try:
            # A new key: the failed batch may have registered the old one.
            return self.client.submit(run_dask_task, spec, held, key=f"{key}-1", pure=False)
        except Exception as exc:
            call = pending.call
            self._pending.pop(call.record.id, None)
            error = _serialization_error(call, spec, exc)
            failed = Failed(message=str(error), exception=error)
            pending.result.set_result(call.finish(failed))
            return None

    def _static_for(self, call: RunnerCall) -> tuple[str, bytes]:
        """The packed part every call of a task shares (sent as bytes, unpacked once
        per worker): the task as another process runs it, and the events' topic.

        Raises:
            SerializationError: the task itself cannot be pickled.
        """
        task = call.portable()
        found = self._statics.get(id(task))
        if found is not None:
            return found[1], found[2]
        try:
            static = cloudpickle.dumps((task, self.topic))
        except Exception as exc:
            raise SerializationError(f"task {task.task_name!r}", "Task", str(exc)) from exc
        key = f"{self.topic}-{len(self._statics)}"
        self._statics[id(task)] = (task, key, static)
        return key, static

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
        for record_id, records, outcome, carries_data in unpack_event(payload):
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
                self._finish(pending, outcome, carries_data)

    def _finish(self, pending: _Pending, outcome: Any, carries_data: bool) -> None:
        call = pending.call
        call.record = outcome.record
        state: State
        if outcome.state_type is StateType.COMPLETED:
            state = DaskHeldState(outcome.state_name, outcome.message, outcome.record, pending.held)
            if carries_data:
                state.data = outcome.data
            call.remember_completion()
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

    def _cancel(self, pending: list[_Pending]) -> None:
        """Cancel calls in flight: those not yet sent, and those on the cluster."""
        with self._queue_lock:
            unsent, self._to_send = self._to_send, []
        for _, _, item in unsent:
            self._crash(item, "", cancelled=True)
        held = [p.held for p in pending if p.held is not None]
        if held:
            self.client.cancel(held)

    def _crash(
        self,
        pending: _Pending,
        message: str,
        exc: BaseException | None = None,
        cancelled: bool = False,
    ) -> None:
        call = pending.call
        if pending.latest is not None:
            call.record = pending.latest
        with self._lock:
            self._pending.pop(call.record.id, None)
        if cancelled:
            state = Cancelled(message="Cancelled on the Dask cluster")
        else:
            state = Crashed(message=message, exception=exc)
        pending.result.set_result(call.finish(state))

    # -- closing ---------------------------------------------------------------------
    def close(self, cancel_pending: bool) -> None:
        with self._queue_lock, self._lock:
            pending = [*self._pending.values(), *(p for _, _, p in self._to_send)]
        try:
            if cancel_pending and pending:
                self._cancel(pending)
            cf.wait([p.result for p in pending], timeout=_SHUTDOWN_GRACE)
        finally:
            self._closing = True
            self._send_wakeup.set()
            self._sender.join()
            self._inbox.put(None)
            self._settler.join()
            if self._preparer is not None:
                self._preparer.shutdown(wait=True)
            with self._lock:
                self._held.clear()
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def _serialization_error(
    call: RunnerCall, spec: DaskTaskSpec, exc: Exception
) -> SerializationError:
    """Name the argument Dask could not send (Dask's own message names its graph)."""
    task_name = call.record.task_name
    for name, value in [*enumerate(spec.args), *spec.kwargs.items()]:
        try:
            cloudpickle.dumps(value)
        except Exception as reason:
            return SerializationError(
                f"argument {name!r} of task {task_name!r}", type(value).__name__, str(reason)
            )
    return SerializationError(f"the call of task {task_name!r}", "", str(exc))


def _start_cluster(runner: DaskTaskRunner) -> Any:
    cluster_class = resolve_cluster_class(runner.cluster_class)
    try:
        return cluster_class(**runner.cluster_kwargs)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{cluster_class.__name__} did not start ({exc}). If the flow is called from a "
            'script, call it under `if __name__ == "__main__":` -- Dask\'s worker '
            "processes import the script again"
        ) from exc


def _records_of(value: Any) -> bytes | None:
    records: bytes | None = value.records
    return records


def _describe_dask_error(exc: BaseException | None) -> str:
    if isinstance(exc, KilledWorker):
        return (
            f"The Dask workers running this task run died ({exc}); Dask stopped "
            "rescheduling it (KilledWorker)"
        )
    return f"The Dask task failed outside the task engine: {exc!r}"
