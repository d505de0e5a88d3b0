"""State-change hooks: which ones a new state calls, and calling them safely.

A hook is called as ``hook(flow_or_task, run_record, state)``; it may be a
plain function, a ``functools.partial``, any callable object, or an ``async``
one (awaited to completion). A hook that raises is logged with its traceback
and changes nothing: the run keeps the state it entered.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sluice.states import State, StateType
from sluice.utilities.asyncs import run_awaitable_sync

if TYPE_CHECKING:
    from sluice.flows import Flow
    from sluice.tasks import Task

#: ``log(level, message, exc)``: where a run writes a line about its hooks
LineWriter = Callable[[int, str, BaseException], None]


def hook_name(hook: Callable[..., Any]) -> str:
    """A readable name for ``hook``: its function's name, also through ``partial``."""
    while isinstance(hook, functools.partial):
        hook = hook.func
    name = getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None)
    return str(name) if name else type(hook).__name__


def flow_hooks_for(flow: Flow[..., Any], state: State) -> list[Callable[..., Any]]:
    """The flow's hooks that entering ``state`` calls."""
    kind = state.type
    if kind is StateType.COMPLETED:
        return flow.on_completion
    if kind is StateType.FAILED:
        return flow.on_failure
    if kind is StateType.CRASHED:
        return flow.on_crashed
    if kind is StateType.CANCELLED:
        return flow.on_cancellation
    if kind is StateType.RUNNING:
        return flow.on_running
    return []


def task_hooks_for(task: Task[..., Any], state: State) -> list[Callable[..., Any]]:
    """The task's hooks that entering ``state`` calls."""
    kind = state.type
    if kind is StateType.COMPLETED:
        return task.on_completion
    if kind is StateType.FAILED:
        return task.on_failure
    if kind is StateType.RUNNING:
        return task.on_running
    return []


def call_hooks(
    hooks: Iterable[Callable[..., Any]],
    subject: Any,
    run: Any,
    state: State,
    line: LineWriter,
) -> None:
    """Call each hook with ``(subject, run, state)``; a raising one is logged and skipped."""
    for hook in hooks:
        try:
            outcome = hook(subject, run, state)
            if inspect.isawaitable(outcome):
                run_awaitable_sync(outcome)
        except Exception as exc:
            line(
                logging.ERROR,
                f"Hook {hook_name(hook)!r} raised in response to entering state "
                f"{state.name!r}; the run's state is unchanged",
                exc,
            )
