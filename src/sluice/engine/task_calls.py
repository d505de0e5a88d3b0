"""The three ways to call a task: directly, ``.submit()`` and ``.map()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.context import flow_run_var
from sluice.engine.parameters import bind_arguments, call_arguments
from sluice.engine.task_engine import create_task_call, run_task_async, run_task_sync
from sluice.futures import SluiceFuture, SluiceFutureList, resolved_future
from sluice.utilities.annotations import unmapped
from sluice.utilities.asyncs import in_async_context

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from sluice.engine.task_engine import TaskCall
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
        from sluice.engine.standalone import standalone_runner

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
