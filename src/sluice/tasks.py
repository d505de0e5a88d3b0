"""``@task``: the definition of a task. How a call runs lives in ``sluice.engine``.

A :class:`Task` is the user's function plus its :class:`~sluice.options.TaskOptions`;
the engine reads both. The methods that run a task (``__call__``, ``submit``,
``map``) import the engine when first called: the only imports from this
module up the layers (see ``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from typing_extensions import ParamSpec

from sluice.options import (
    Hooks,
    TaskHook,
    TaskOptions,
    expose_options,
    hooks_of,
    keywords_of,
    option_names,
)
from sluice.retries import exponential_backoff
from sluice.utilities.wrapping import wrap_like

if TYPE_CHECKING:
    from sluice.cache_policies import CachePolicy
    from sluice.futures import SluiceFuture, SluiceFutureList
    from sluice.results.serializers import Serializer
    from sluice.retries import RetryPolicy
    from sluice.transactions import TransactionHook

P = ParamSpec("P")
R = TypeVar("R")

#: Keyword arguments of ``submit``/``map``/``__call__`` that belong to the engine.
ENGINE_KEYWORDS = ("wait_for", "return_state")
#: what ``with_options`` (and ``@task``) accept
OPTION_NAMES = option_names(TaskOptions)


__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]


class Task(Generic[P, R]):
    """A Python function whose calls Sluice runs, retries and records.

    Calling the task runs it at once in this thread; ``.submit()`` runs it on
    the flow's task runner and returns a future; ``.map()`` submits one call
    per element of its iterable arguments.

    Args:
        fn: the function.
        options: its options (``@task(...)``'s keyword arguments), defaults if None.

    Attributes:
        options: the options as given (read ``task.options.timeout_seconds``).
        name: the task's name (``options.name`` or the function's).
        description: ``options.description`` or the function's docstring.
        tags: ``options.tags``, a frozenset.
        retries: how many retries a failed call gets.
        on_running, on_completion, on_failure: the hooks, each a list that is
            also a decorator (``@my_task.on_failure``).
        on_commit_hooks, on_rollback_hooks: the transaction hooks (add with
            the ``@my_task.on_commit`` / ``@my_task.on_rollback`` decorators).
    """

    fn: Callable[P, R]
    options: TaskOptions
    name: str
    description: str | None
    tags: frozenset[str]
    retries: int
    retry_policy: RetryPolicy
    result_serializer: Serializer | None
    #: the cache policy in force (None: this task is never cached across runs)
    effective_cache_policy: CachePolicy | None
    on_completion: Hooks[TaskHook]
    on_failure: Hooks[TaskHook]
    on_running: Hooks[TaskHook]
    #: called with the run's transaction when it commits / rolls back (sluice.transactions)
    on_commit_hooks: Hooks[TransactionHook]
    on_rollback_hooks: Hooks[TransactionHook]
    isasync: bool

    def __init__(self, fn: Callable[P, R], options: TaskOptions | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {type(fn).__name__}")
        options = options or TaskOptions()
        self.fn = fn
        self.options = options
        self.name = options.name or fn.__name__
        self.description = options.description or inspect.getdoc(fn)
        self.tags = frozenset(options.tags or ())
        self.retry_policy = options.retry_policy
        self.retries = self.retry_policy.retries
        self.result_serializer = options.serializer
        self.effective_cache_policy = options.effective_cache_policy
        # The options' own lists: a hook added with a decorator stays in the
        # options, so with_options copies carry it.
        self.on_completion = hooks_of(options.on_completion)
        self.on_failure = hooks_of(options.on_failure)
        self.on_running = hooks_of(options.on_running)
        self.on_commit_hooks = hooks_of(options.on_commit)
        self.on_rollback_hooks = hooks_of(options.on_rollback)
        self.isasync = inspect.iscoroutinefunction(fn)
        params = inspect.signature(fn).parameters
        self._engine_keywords = tuple(k for k in ENGINE_KEYWORDS if k not in params)
        wrap_like(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task now, in this thread, and return its result."""
        wait_for, return_state = self._engine_options(kwargs)
        result: R = (_call_task or _load_call_task())(self, args, kwargs, wait_for, return_state)
        return result

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> SluiceFuture[R]:
        """Run the task on the flow's task runner; returns a future of its result.

        ``wait_for=[futures]`` adds dependencies that pass no data;
        ``return_state=True`` waits and returns the call's final state instead.
        """
        from sluice.engine.task_calls import submit_task

        wait_for, return_state = self._engine_options(kwargs)
        future = submit_task(self, args, kwargs, wait_for)
        if return_state:
            future.wait()
            return future.state  # type: ignore[return-value]
        return future

    def map(self, *args: Any, **kwargs: Any) -> SluiceFutureList[R]:
        """Submit one call per element of the iterable arguments (zipped).

        Wrap an argument in ``unmapped()`` to pass it whole to every call;
        ``return_state=True`` waits and returns the calls' final states instead.
        """
        from sluice.engine.task_calls import map_task

        wait_for, return_state = self._engine_options(kwargs)
        futures = map_task(self, args, kwargs, wait_for)
        if return_state:
            futures.wait()
            return [future.state for future in futures]  # type: ignore[return-value]
        return futures

    def on_commit(self, fn: TransactionHook) -> TransactionHook:
        """Decorator: run ``fn(transaction)`` when a completed run of this task is
        committed (see :mod:`sluice.transactions`)."""
        self.on_commit_hooks.append(fn)
        return fn

    def on_rollback(self, fn: TransactionHook) -> TransactionHook:
        """Decorator: run ``fn(transaction)`` when a completed run of this task is
        rolled back with its transaction, to undo its effect."""
        self.on_rollback_hooks.append(fn)
        return fn

    def with_options(self, **overrides: Any) -> Task[P, R]:
        """A copy of this task with some options replaced (the keyword arguments of
        ``@task``); hooks added with decorators are kept.

        Raises:
            TypeError: a name that is not an option.
        """
        unknown = set(overrides) - OPTION_NAMES
        if unknown:
            raise TypeError(f"with_options() got unknown options: {', '.join(sorted(unknown))}")
        return Task(self.fn, dataclasses.replace(self.options, **overrides))

    def _engine_options(self, kwargs: dict[str, Any]) -> tuple[list[Any], bool]:
        wait_for: Any = None
        return_state = False
        if "wait_for" in self._engine_keywords:
            wait_for = kwargs.pop("wait_for", None)
        if "return_state" in self._engine_keywords:
            return_state = bool(kwargs.pop("return_state", False))
        if wait_for is None:
            return [], return_state
        if not isinstance(wait_for, (list, tuple, set)):
            wait_for = [wait_for]
        return list(wait_for), return_state

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


# Prefect code reads options off the task (``my_task.retry_delay_seconds``); typed
# code reads ``.options``. Not for type checkers, which see ``.options`` only.
expose_options(Task, TaskOptions)

#: ``sluice.engine.task_calls.call_task``, once loaded: an import statement in
#: ``__call__`` would cost about a microsecond per direct call
_call_task: Callable[..., Any] | None = None


def _load_call_task() -> Callable[..., Any]:
    global _call_task
    from sluice.engine.task_calls import call_task

    _call_task = call_task
    return call_task


class _MakesTask(Protocol):
    """What ``@task(...)`` with options returns: a decorator keeping the signature."""

    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
@keywords_of(TaskOptions)
def task() -> _MakesTask: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Turn a function into a :class:`Task`; use bare (``@task``) or with options.

    The options are the fields of :class:`~sluice.options.TaskOptions` (Prefect's:
    ``name``, ``retries``, ``retry_delay_seconds``, ``timeout_seconds``,
    ``cache_policy``, ``persist_result``, the hooks ``on_running``/
    ``on_completion``/``on_failure`` called as ``hook(task, task_run, state)``,
    ``on_commit``/``on_rollback`` ...). A task may return a state
    (``Completed(name="SKIPPED", message=...)``, ``Failed(message=...)``) to end
    in it; see :mod:`sluice.engine.final_state`.

    Raises:
        TypeError: an unknown option, or ``fn`` not callable.
        ValueError: an option's value is refused (see :class:`~sluice.options.TaskOptions`).
    """
    chosen = TaskOptions(**options)
    if fn is not None:
        return Task(fn, chosen)
    return lambda fn: Task(fn, chosen)


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str:
    """A ``cache_key_fn`` keyed on the task's source code and its arguments."""
    from sluice.cache_policies import task_input_hash as compute  # hashlib: see options

    return compute(context, arguments)
