"""``run_deployment``: trigger a deployment's run from code, and optionally wait for it.

The run is created Scheduled through the backend (embedded store or server)
and executed by a worker (or ``serve``) of the deployment's pool. Called
inside a flow, the run is a subflow of the calling run: it records the
parent's id and a placeholder task run at the call's position, and the call
gets an idempotency key derived from that position, so a resumed or retried
parent gets the same child run back instead of starting another.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sluice.results.owners import flow_result_owner
from sluice.schemas import FlowRunRecord, StateRecord, TaskRunRecord, new_id
from sluice.states import NOT_LOADED, State, StateType

if TYPE_CHECKING:
    from sluice.backend.deployments_protocol import DeploymentBackend
    from sluice.context import FlowRunContext

#: seconds between two looks at a run being waited for
DEFAULT_POLL_INTERVAL = 0.5


class DeploymentRun:
    """A run of a deployment as last seen: its record, and its state as a :class:`State`.

    Attributes:
        record: the flow run record (all fields; ``.id`` is worth saving).
    """

    __slots__ = ("record",)

    def __init__(self, record: FlowRunRecord) -> None:
        self.record = record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def deployment_id(self) -> str | None:
        return self.record.deployment_id

    @property
    def scheduled_start_time(self) -> _dt.datetime | None:
        return self.record.scheduled_start_time

    @property
    def state(self) -> State:
        """The run's state; for a completed run with a stored result, ``state.result()``
        loads the flow's return value."""
        rec = self.record
        data = NOT_LOADED if rec.result is not None else None
        state = State(
            rec.state_type,
            rec.state_name,
            message=rec.state_message,
            data=data,
            timestamp=rec.updated,
            result_ref=rec.result,
            result_owner=flow_result_owner(rec.id),
        )
        state.run_id = rec.id
        return state

    def __repr__(self) -> str:
        state = self.record.state_name
        return f"DeploymentRun(id={self.id!r}, name={self.name!r}, state={state!r})"


def run_deployment(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    idempotency_key: str | None = None,
    tags: Sequence[str] | None = None,
    scheduled_time: _dt.datetime | None = None,
    flow_run_name: str | None = None,
    as_subflow: bool = True,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    backend: DeploymentBackend | None = None,
) -> DeploymentRun:
    """Create a run of the deployment ``name`` (``FLOW/NAME`` or its id); wait for it.

    Args:
        parameters: override the deployment's default parameters; checked
            against its parameter schema before anything is created.
        timeout: seconds to wait for a final state; ``0`` returns at once (the
            run Scheduled), ``None`` waits as long as it takes. On timeout the
            run is returned as it is (it keeps going).
        idempotency_key: a repeated call with the same key (a signal firing
            twice) returns the run the first call created.
        tags: added to the deployment's tags.
        scheduled_time: when the run is due (aware datetime; default now).
        flow_run_name: the run's name (default: a generated one).
        as_subflow: inside a flow, link the run to the calling run.
        poll_interval: seconds between two looks at the run while waiting.
        backend: where to create it (default: this process's backend, the
            server when ``SLUICE_API_URL`` is set).

    Returns:
        The run, with ``.id`` and ``.state``.

    Raises:
        NotFoundError: no such deployment.
        ParameterValidationError: a parameter does not fit (no run is created).
        ValueError: a negative timeout, a naive ``scheduled_time``.
    """
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, not {timeout!r}")
    if scheduled_time is not None and scheduled_time.utcoffset() is None:
        raise ValueError("scheduled_time needs a timezone (an aware datetime)")
    from sluice.context import flow_run_var
    from sluice.engine.parameters import jsonable

    parent = flow_run_var.get() if as_subflow else None
    store = backend if backend is not None else _default_backend(parent)
    placeholder = None
    if parent is not None:
        placeholder = _placeholder(parent, name)
        idempotency_key = idempotency_key or f"subflow:{parent.flow_run.id}:{placeholder.task_key}"
    record = store.create_flow_run_from_deployment(
        name,
        jsonable(dict(parameters or {})),
        idempotency_key=idempotency_key,
        scheduled_start_time=scheduled_time,
        tags=tags,
        parent_flow_run_id=parent.flow_run.id if parent is not None else None,
        parent_task_run_id=placeholder.id if placeholder is not None else None,
        name=flow_run_name,
    )
    if placeholder is not None and record.parent_task_run_id not in (None, placeholder.id):
        # The same call of an earlier attempt created the run: keep its placeholder.
        placeholder.id = record.parent_task_run_id or placeholder.id
    if timeout != 0:
        record = wait_for_run(store, record, timeout=timeout, poll_interval=poll_interval)
    if parent is not None and placeholder is not None:
        _record_placeholder(parent, placeholder, record)
    return DeploymentRun(record)


def wait_for_run(
    backend: DeploymentBackend,
    record: FlowRunRecord,
    *,
    timeout: float | None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> FlowRunRecord:
    """Poll ``record``'s run until it is final or ``timeout`` seconds passed; its last record."""
    deadline = None if timeout is None else time.monotonic() + timeout
    read = backend.read_flow_run  # type: ignore[attr-defined]
    while record.state_type not in _FINAL:
        if deadline is not None and time.monotonic() >= deadline:
            break
        pause = poll_interval
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        time.sleep(pause)
        record = read(record.id)
    return record


_FINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})


def _default_backend(parent: FlowRunContext | None) -> DeploymentBackend:
    if parent is not None:
        backend: Any = parent.backend
    else:
        from sluice.backend.factory import get_backend

        backend = get_backend()
    return backend


def _placeholder(parent: FlowRunContext, name: str) -> TaskRunRecord:
    """The parent's task run standing for this call (its position makes the key)."""
    from sluice.context import task_run_var

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
