"""``run_deployment``: trigger a deployment's run from code, and optionally wait for it.

The run is created Scheduled through the backend (embedded store or server)
and executed by a worker (or ``serve``) of the deployment's pool. Called
inside a flow, the run is a subflow of the calling run: it records the
parent's id and a placeholder task run at the call's position, and the call
gets an idempotency key derived from that position, so a resumed or retried
parent gets the same child run back instead of starting another.

The same function serves sync and async callers: it returns a
:class:`~sluice.deployments.deployment_run.DeploymentRun`, which is also
awaitable (that module says why). The work is written once, in
:class:`DeploymentCall`; only the waiting has a sync and an async driver,
both stepping one generator that decides when to look at the run again.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.backend.factory import get_backend
from sluice.context import flow_run_var, task_run_var
from sluice.deployments.deployment_run import DeploymentRun
from sluice.engine.parameters import jsonable
from sluice.schemas import FlowRunRecord, StateRecord, TaskRunRecord, new_id
from sluice.states import State, StateType
from sluice.utilities.asyncs import in_async_context, mark_coroutine_function

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.context import FlowRunContext

#: seconds between two looks at a run being waited for
DEFAULT_POLL_INTERVAL = 0.5


@mark_coroutine_function
def run_deployment(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    idempotency_key: str | None = None,
    tags: Sequence[str] | None = None,
    scheduled_time: _dt.datetime | None = None,
    flow_run_name: str | None = None,
    job_variables: Mapping[str, Any] | None = None,
    as_subflow: bool = True,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    backend: Backend | None = None,
) -> DeploymentRun:
    """Create a run of the deployment ``name`` (``FLOW/NAME`` or its id); wait for it.

    From sync code the run is created (and waited for) before this returns.
    From async code (a coroutine, an async flow or task) ``await`` it: the
    call itself does nothing yet, and the ``await`` creates the run and waits
    without blocking the event loop. ``async_to_sync(run_deployment)(...)``
    works too. Either way the result is the :class:`DeploymentRun`.

    Args:
        parameters: override the deployment's default parameters; checked
            against its parameter schema before anything is created.
        timeout: seconds to wait for a final state; ``0`` returns at once (the
            run Scheduled), ``None`` waits as long as it takes. On timeout the
            run is returned as it is (it keeps going).
        idempotency_key: a repeated call with the same key (a signal firing
            twice) returns the run the first call created.
        tags: added to the deployment's tags.
        scheduled_time: when the run is due (default now); a naive datetime
            is local time.
        flow_run_name: the run's name (default: a generated one).
        job_variables: how a worker executes this run, kept with the run; on
            process pools ``env`` and ``working_dir`` apply (see
            :mod:`sluice.job_variables`).
        as_subflow: inside a flow, link the run to the calling run.
        poll_interval: seconds between two looks at the run while waiting.
        backend: where to create it (default: this process's backend, the
            server when ``SLUICE_API_URL`` is set).

    Returns:
        The run, with ``.id`` and ``.state``.

    Raises:
        NotFoundError: no such deployment.
        ParameterValidationError: a parameter does not fit (no run is created).
        ValueError: a negative timeout or poll interval, ``job_variables`` of
            the wrong shape (no run is created).
    """
    call = DeploymentCall.prepare(
        name,
        parameters,
        timeout=timeout,
        poll_interval=poll_interval,
        as_subflow=as_subflow,
        backend=backend,
        options={
            "idempotency_key": idempotency_key,
            "scheduled_start_time": local_if_naive(scheduled_time),
            "tags": tags,
            "name": flow_run_name,
            "job_variables": job_variables,
        },
    )
    if called_from_async_code():
        return DeploymentRun(call=call)
    return DeploymentRun(call.run_sync())


def called_from_async_code() -> bool:
    """True when the caller is async code, which will ``await`` the result.

    That is: an event loop runs in this thread, and the innermost flow or task
    run (if any) is async. A sync flow or task called from async code runs in
    the loop's thread but is sync code: its calls do their work at once.
    """
    if not in_async_context():
        return False

    task_ctx = task_run_var.get()
    if task_ctx is not None:
        return bool(task_ctx.task.isasync)
    flow_ctx = flow_run_var.get()
    if flow_ctx is not None:
        return bool(flow_ctx.flow.isasync)
    return True


def local_if_naive(moment: _dt.datetime | None) -> _dt.datetime | None:
    """``moment`` made aware: a naive datetime is read as this machine's local time."""
    if moment is None or moment.utcoffset() is not None:
        return moment
    return moment.astimezone()


@dataclass
class DeploymentCall:
    """One ``run_deployment`` call: what to create, and how long to wait for it."""

    name: str
    parameters: dict[str, Any]
    options: dict[str, Any]
    timeout: float | None
    poll_interval: float
    backend: Backend | None
    #: the calling flow run, when the run is its subflow
    parent: FlowRunContext | None
    #: the parent's task run standing for this call
    placeholder: TaskRunRecord | None

    @classmethod
    def prepare(
        cls,
        name: str,
        parameters: Mapping[str, Any] | None,
        *,
        timeout: float | None,
        poll_interval: float,
        as_subflow: bool,
        backend: Backend | None,
        options: dict[str, Any],
    ) -> DeploymentCall:
        """Check the arguments and take the call's position in the calling flow (no I/O).

        Raises:
            ValueError: a negative timeout or poll interval.
        """
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, not {timeout!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")

        parent = flow_run_var.get() if as_subflow else None
        placeholder = _placeholder(parent, name) if parent is not None else None
        if parent is not None and placeholder is not None and not options["idempotency_key"]:
            options["idempotency_key"] = f"subflow:{parent.flow_run.id}:{placeholder.task_key}"
        return cls(
            name,
            jsonable(dict(parameters or {})),
            options,
            timeout,
            poll_interval,
            backend,
            parent,
            placeholder,
        )

    def store(self) -> Backend:
        """Where the run is created: the given backend, the parent's, or this process's."""
        if self.backend is not None:
            return self.backend
        if self.parent is not None:
            return self.parent.backend

        return get_backend()

    def create(self) -> FlowRunRecord:
        """Create the run (or find the one an earlier call with the same key made)."""
        placeholder = self.placeholder
        record = self.store().create_flow_run_from_deployment(
            self.name,
            self.parameters,
            parent_flow_run_id=self.parent.flow_run.id if self.parent is not None else None,
            parent_task_run_id=placeholder.id if placeholder is not None else None,
            **self.options,
        )
        if placeholder is not None and record.parent_task_run_id not in (None, placeholder.id):
            # The same call of an earlier attempt created the run: keep its placeholder.
            placeholder.id = record.parent_task_run_id or placeholder.id
        return record

    def finish(self, record: FlowRunRecord) -> FlowRunRecord:
        """Record the placeholder in the run's current state (final when waited for)."""
        if self.parent is not None and self.placeholder is not None:
            _record_placeholder(self.parent, self.placeholder, record)
        return record

    def run_sync(self) -> FlowRunRecord:
        """Create the run and wait for it here (blocking this thread)."""
        record = self.create()
        if self.timeout != 0:
            record = wait_for_run(
                self.store(), record, timeout=self.timeout, poll_interval=self.poll_interval
            )
        return self.finish(record)

    async def run_async(self) -> FlowRunRecord:
        """Create the run and wait for it, leaving the event loop free: the store's
        calls run in a worker thread, the pauses are ``asyncio.sleep``."""
        record = await asyncio.to_thread(self.create)
        if self.timeout != 0:
            record = await wait_for_run_async(
                self.store(), record, timeout=self.timeout, poll_interval=self.poll_interval
            )
        return self.finish(record)


_FINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})

#: yields seconds to pause before the next look; is sent the record read; returns the last one
Polls = Generator[float, FlowRunRecord, FlowRunRecord]


def poll_until_final(
    record: FlowRunRecord, *, timeout: float | None, poll_interval: float, clock: Any = None
) -> Polls:
    """Waiting for a run, without its I/O: the drivers sleep each pause it yields,
    read the run, and send the record back, until it returns (final, or out of time)."""
    clock = clock or time.monotonic
    deadline = None if timeout is None else clock() + timeout
    while record.state_type not in _FINAL:
        pause = poll_interval
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                break
            pause = min(pause, left)
        record = yield pause
    return record


def wait_for_run(
    backend: Backend,
    record: FlowRunRecord,
    *,
    timeout: float | None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> FlowRunRecord:
    """Poll ``record``'s run until it is final or ``timeout`` seconds passed; its last record."""
    read = backend.read_flow_run
    polls = poll_until_final(record, timeout=timeout, poll_interval=poll_interval)
    try:
        pause = next(polls)
        while True:
            time.sleep(pause)
            pause = polls.send(read(record.id))
    except StopIteration as done:
        last: FlowRunRecord = done.value
        return last


async def wait_for_run_async(
    backend: Backend,
    record: FlowRunRecord,
    *,
    timeout: float | None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> FlowRunRecord:
    """:func:`wait_for_run` for async code: sleeps with asyncio, reads in a worker thread."""
    read = backend.read_flow_run
    polls = poll_until_final(record, timeout=timeout, poll_interval=poll_interval)
    try:
        pause = next(polls)
        while True:
            await asyncio.sleep(pause)
            pause = polls.send(await asyncio.to_thread(read, record.id))
    except StopIteration as done:
        last: FlowRunRecord = done.value
        return last


def _placeholder(parent: FlowRunContext, name: str) -> TaskRunRecord:
    """The parent's task run standing for this call (its position makes the key)."""
    task_name = f"run_deployment/{name}"
    index = parent.next_call_index(task_name)
    task_ctx = task_run_var.get()
    return TaskRunRecord(
        id=new_id(),
        task_name=task_name,
        name=f"{task_name}-{index}",
        flow_run_id=parent.flow_run.id,
        call_index=index,
        upstream_ids=[task_ctx.task_run.id] if task_ctx else [],
    )


def _record_placeholder(
    parent: FlowRunContext, placeholder: TaskRunRecord, run: FlowRunRecord
) -> None:
    """Write the placeholder in the child's current state (final when waited for)."""
    state = State(run.state_type, run.state_name, message=run.state_message)
    placeholder.apply(state)
    placeholder.result = run.result
    parent.backend.write_task_run(
        placeholder, StateRecord.from_state(placeholder.id, "task", state)
    )


__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DeploymentCall",
    "DeploymentRun",
    "called_from_async_code",
    "local_if_naive",
    "run_deployment",
    "wait_for_run",
    "wait_for_run_async",
]
