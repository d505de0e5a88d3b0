"""The three ways to call a task (directly, ``.submit()`` and ``.map()``), and the
task run record each call creates."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from sluice.context import FlowRunContext, flow_run_var, tags_var
from sluice.engine import task_results
from sluice.engine.inputs import collect_upstream, input_fingerprint
from sluice.engine.parameters import bind_arguments, call_arguments
from sluice.engine.standalone import standalone_backend, standalone_runner
from sluice.engine.task_call import TaskCall
from sluice.engine.task_engine import run_task_async, run_task_sync
from sluice.engine.task_replay import replay
from sluice.futures import SluiceFuture, SluiceFutureList, resolved_future
from sluice.schemas import StateRecord, TaskRunRecord, new_id
from sluice.states import utcnow
from sluice.utilities.annotations import unmapped
from sluice.utilities.asyncs import in_async_context

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from sluice.states import State
    from sluice.tasks import Task


def call_task(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: list[Any],
    return_state: bool,
) -> Any:
    """Run a task now in this thread; its result (or a coroutine of it in async code)."""
    call = create_task_call(task, args, kwargs, wait_for, flow_run_var.get(), waits=False)
    if call.replayed is not None:
        if task.isasync and in_async_context():
            return _already(call, call.replayed, return_state)
        return _outcome(call, call.replayed, return_state)
    if task.isasync and in_async_context():
        return _await_task(call, run_task_async(call), return_state)
    state = run_task_sync(call)
    # _outcome, inlined: this is the path of every direct call.
    if return_state:
        return state
    returned = call.returned_state
    return state.result() if returned is None else returned


def _outcome(call: TaskCall, state: State, return_state: bool) -> Any:
    """What a direct call gives: its state, or what the function returned.

    A function that returned a state (``Completed(name="SKIPPED")``, a
    ``Failed`` one ...) gives that back as it is, without raising, as in Prefect.
    """
    if return_state:
        return state
    returned = call.returned_state
    return state.result() if returned is None else returned


async def _already(call: TaskCall, state: State, return_state: bool) -> Any:
    return _outcome(call, state, return_state)


async def _await_task(call: TaskCall, run: Coroutine[Any, Any, State], return_state: bool) -> Any:
    return _outcome(call, await run, return_state)


def submit_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: list[Any]
) -> SluiceFuture[Any]:
    """Hand a task call to the flow's task runner; a future of its final state."""
    flow_ctx = flow_run_var.get()
    call = create_task_call(task, args, kwargs, wait_for, flow_ctx)
    return _submit(call)


def _submit(call: TaskCall) -> SluiceFuture[Any]:
    if call.replayed is not None:
        return resolved_future(call.record.id, call.task.name, call.replayed, call.record.task_key)
    flow_ctx = call.flow_ctx
    if flow_ctx is None:
        return standalone_runner().submit(call)
    future = flow_ctx.task_runner.submit(call)
    flow_ctx.futures.append(future)
    return future


def map_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: list[Any]
) -> SluiceFutureList[Any]:
    """Submit one call per element of the iterable arguments.

    Raises:
        ValueError: no iterable argument, or iterables of different lengths.
    """
    parameters = bind_arguments(task.fn, task.name, args, kwargs, defaults=False)
    static: dict[str, Any] = {}
    mapped: dict[str, list[Any]] = {}
    for name, value in parameters.items():
        if isinstance(value, unmapped):
            static[name] = value.value
        elif isinstance(value, SluiceFuture):
            mapped[name] = list(value.result())
        elif _is_mappable(value):
            mapped[name] = value if isinstance(value, list) else list(value)
        else:
            static[name] = value
    if not mapped:
        raise ValueError(
            f"{task.name}.map() needs at least one iterable argument; "
            "wrap values that should be passed whole in unmapped()"
        )
    lengths = {name: len(values) for name, values in mapped.items()}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{n}={length}" for n, length in lengths.items())
        raise ValueError(f"{task.name}.map() got iterables of different lengths: {sizes}")
    flow_ctx = flow_run_var.get()
    call_index = flow_ctx.next_call_index(task.name) if flow_ctx else 0
    futures: SluiceFutureList[Any] = SluiceFutureList()
    count = next(iter(lengths.values()))
    for index in range(count):
        params = dict(static)
        for name, values in mapped.items():
            params[name] = values[index]
        call_args, call_kwargs = call_arguments(task.fn, params)
        call = create_task_call(task, call_args, call_kwargs, wait_for, flow_ctx, index, call_index)
        futures.append(_submit(call))
    return futures


def _is_mappable(value: Any) -> bool:
    if isinstance(value, (str, bytes, dict)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def create_task_call(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: list[Any],
    flow_ctx: FlowRunContext | None,
    map_index: int = -1,
    call_index: int | None = None,
    waits: bool = True,
) -> TaskCall:
    """Create the task run record for a call and wrap it in a :class:`TaskCall`.

    Args:
        waits: the call will wait for a runner (``.submit``/``.map``), so it is
            recorded as Pending now; a direct call starts at once and is first
            recorded when it starts Running.
    """
    input_hash: str | None = None
    if flow_ctx is not None:
        if flow_ctx.guard is not None:
            flow_ctx.guard.check()  # no new work once another process took the run over
        sink, settings = flow_ctx.backend, flow_ctx.settings
        if call_index is None:
            call_index = flow_ctx.next_call_index(task.name)
        own = task.options.log_prints
        log_prints = flow_ctx.log_prints if own is None else own
        input_hash = input_fingerprint(args, kwargs)
        if not flow_ctx.journal.stopped:  # checked here: most calls replay nothing
            replayed = _replayed(task, args, kwargs, flow_ctx, call_index, map_index, input_hash)
            if replayed is not None:
                return replayed
    else:
        sink = standalone_backend()
        settings = task_results.settings_for_standalone()
        call_index = call_index or 0
        log_prints = bool(task.options.log_prints)
    upstream = collect_upstream(args, kwargs, wait_for) if args or kwargs or wait_for else []
    extra_tags = tags_var.get()
    now = utcnow()
    record = TaskRunRecord(
        id=new_id(),
        task_name=task.name,
        name=_run_name(task, args, kwargs, call_index, map_index),
        flow_run_id=flow_ctx.flow_run.id if flow_ctx else None,
        call_index=call_index,
        map_index=map_index,
        tags=sorted(task.tags | extra_tags) if task.tags or extra_tags else [],
        upstream_ids=[f.task_run_id for f in upstream if f.task_run_id],
        created=now,
        updated=now,
        input_hash=input_hash,
    )
    call = TaskCall(
        task, args, kwargs, record, sink, flow_ctx, upstream, log_prints, settings,
        wait_for=wait_for or None,
    )  # fmt: skip
    if waits:
        pending = StateRecord(record.id, "task", record.state_type, "Pending", now)
        sink.write_task_run(record, pending)
    return call


def _replayed(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_ctx: FlowRunContext,
    call_index: int,
    map_index: int,
    input_hash: str | None,
) -> TaskCall | None:
    """The call answered from the flow run's journal, or None if it must execute."""
    key = task_key_of(task.name, call_index, map_index)
    refusal = partial(task_results.replay_refusal, flow_ctx.settings)
    entry = flow_ctx.journal.lookup(task.name, call_index, key, input_hash, refusal)
    if entry is None:
        return None
    call = TaskCall(
        task, args, kwargs, entry, flow_ctx.backend, flow_ctx, [], False, flow_ctx.settings,
        prepared=True,
    )  # fmt: skip
    return replay(call)


def task_key_of(task_name: str, call_index: int, map_index: int) -> str:
    """The journal position of a call (same format as ``TaskRunRecord.task_key``)."""
    base = f"{task_name}:{call_index}"
    return base if map_index < 0 else f"{base}:{map_index}"


def _run_name(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], call: int, index: int
) -> str:
    template = task.options.task_run_name
    if template is None:
        return f"{task.name}-{call}" if index < 0 else f"{task.name}-{call}[{index}]"
    if callable(template):
        return str(template())
    return template.format(**bind_arguments(task.fn, task.name, args, kwargs))
