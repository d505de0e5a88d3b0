"""``@task``: the definition of a task. How a call runs lives in ``sluice.engine``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from typing_extensions import ParamSpec

from sluice.engine.hooks import Hooks
from sluice.engine.retries import RetryDelay, RetryPolicy, exponential_backoff

if TYPE_CHECKING:
    import datetime

    from sluice.cache_policies import CachePolicy
    from sluice.futures import SluiceFuture, SluiceFutureList
    from sluice.results.serializers import Serializer
    from sluice.schemas import TaskRunRecord
    from sluice.states import State
    from sluice.transactions import TransactionHook

P = ParamSpec("P")
R = TypeVar("R")

TaskHook = Callable[["Task[..., Any]", "TaskRunRecord", "State"], Any]
#: Keyword arguments of ``submit``/``map``/``__call__`` that belong to the engine.
ENGINE_KEYWORDS = ("wait_for", "return_state")


__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]


class Task(Generic[P, R]):
    """A Python function whose calls Sluice runs, retries and records.

    Calling the task runs it at once in this thread; ``.submit()`` runs it on
    the flow's task runner and returns a future; ``.map()`` submits one call
    per element of its iterable arguments.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        timeout_seconds: float | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        log_prints: bool | None = None,
        on_completion: list[TaskHook] | None = None,
        on_failure: list[TaskHook] | None = None,
        on_running: list[TaskHook] | None = None,
        persist_result: bool | None = None,
        result_storage: str | None = None,
        result_serializer: str | Serializer | None = None,
        result_storage_key: str | None = None,
        cache_result_in_memory: bool = True,
        cache_policy: CachePolicy | None = None,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        refresh_cache: bool = False,
        on_commit: list[TransactionHook] | None = None,
        on_rollback: list[TransactionHook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {type(fn).__name__}")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn)
        self.tags = frozenset(tags or ())
        self.version = version
        self.retries = int(retries or 0)
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.retry_policy = RetryPolicy.build(
            retries, retry_delay_seconds, retry_jitter_factor, retry_condition_fn
        )
        self.timeout_seconds = timeout_seconds
        self.task_run_name = task_run_name
        self.log_prints = log_prints
        #: hooks by state entered; each list is also a decorator (``@my_task.on_failure``)
        self.on_completion: Hooks[TaskHook] = Hooks(on_completion or [])
        self.on_failure: Hooks[TaskHook] = Hooks(on_failure or [])
        self.on_running: Hooks[TaskHook] = Hooks(on_running or [])
        #: called with the run's transaction when it commits / rolls back (sluice.transactions)
        self.on_commit_hooks: list[TransactionHook] = list(on_commit or [])
        self.on_rollback_hooks: list[TransactionHook] = list(on_rollback or [])
        from sluice.cache_policies import resolve_policy
        from sluice.results.serializers import resolve_serializer

        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = resolve_serializer(result_serializer)
        self.result_storage_key = result_storage_key
        self.cache_result_in_memory = cache_result_in_memory
        self.cache_policy = cache_policy
        self.cache_key_fn = cache_key_fn
        #: the policy in force (None: this task is never cached across runs)
        self.effective_cache_policy = resolve_policy(cache_policy, cache_key_fn)
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        if self.effective_cache_policy is not None and persist_result is False:
            raise ValueError(
                f"Task {self.name!r}: caching needs a stored result, so it cannot be "
                "combined with persist_result=False"
            )
        self.isasync = inspect.iscoroutinefunction(fn)
        params = inspect.signature(fn).parameters
        self._engine_keywords = tuple(k for k in ENGINE_KEYWORDS if k not in params)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task now, in this thread, and return its result."""
        wait_for, return_state = self._engine_options(kwargs)
        return (_call_task or _load_call_task())(self, args, kwargs, wait_for, return_state)

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
        """A copy of this task with some decorator arguments replaced."""
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "version": self.version,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "retry_jitter_factor": self.retry_jitter_factor,
            "retry_condition_fn": self.retry_condition_fn,
            "timeout_seconds": self.timeout_seconds,
            "task_run_name": self.task_run_name,
            "log_prints": self.log_prints,
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "on_running": self.on_running,
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "result_storage_key": self.result_storage_key,
            "cache_result_in_memory": self.cache_result_in_memory,
            "cache_policy": self.cache_policy,
            "cache_key_fn": self.cache_key_fn,
            "cache_expiration": self.cache_expiration,
            "refresh_cache": self.refresh_cache,
            "on_commit": self.on_commit_hooks,
            "on_rollback": self.on_rollback_hooks,
        }
        unknown = set(overrides) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unknown options: {', '.join(sorted(unknown))}")
        current.update(overrides)
        return Task(self.fn, **current)

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


#: ``sluice.engine.task_calls.call_task``, once loaded: an import statement in
#: ``__call__`` would cost about a microsecond per direct call
_call_task: Callable[..., Any] | None = None


def _load_call_task() -> Callable[..., Any]:
    global _call_task
    from sluice.engine.task_calls import call_task

    _call_task = call_task
    return call_task


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: Callable[..., bool] | None = None,
    timeout_seconds: float | None = None,
    task_run_name: str | Callable[[], str] | None = None,
    log_prints: bool | None = None,
    on_completion: list[TaskHook] | None = None,
    on_failure: list[TaskHook] | None = None,
    on_running: list[TaskHook] | None = None,
    persist_result: bool | None = None,
    result_storage: str | None = None,
    result_serializer: str | Serializer | None = None,
    result_storage_key: str | None = None,
    cache_result_in_memory: bool = True,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: Callable[..., str | None] | None = None,
    cache_expiration: datetime.timedelta | None = None,
    refresh_cache: bool = False,
    on_commit: list[TransactionHook] | None = None,
    on_rollback: list[TransactionHook] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Turn a function into a :class:`Task`; use bare (``@task``) or with options.

    Options mirror Prefect's: ``name``, ``description``, ``tags``, ``version``,
    ``retries``, ``retry_delay_seconds`` (number, list, or callable),
    ``retry_jitter_factor``, ``retry_condition_fn`` (called as
    ``fn(task, task_run, state)``; ``state.result()`` re-raises the attempt's
    exception), ``timeout_seconds``, ``task_run_name`` (template with parameter
    names, or callable), ``log_prints``, ``on_running``/``on_completion``/
    ``on_failure`` hooks called as ``hook(task, task_run, state)``.

    A task may return a state (``Completed(name="SKIPPED", message=...)``,
    ``Failed(message=...)``) to end in it; see :mod:`sluice.engine.final_state`.

    Results: ``persist_result`` (default: on), ``result_storage`` (a folder),
    ``result_serializer`` (``"json"``/``"pickle"``), ``result_storage_key``
    (template with ``parameters``, ``task_run``, ``flow_run_id`` and parameter
    names), ``cache_result_in_memory``. Caching across runs is off unless
    ``cache_policy`` or ``cache_key_fn`` is given; ``cache_expiration`` and
    ``refresh_cache`` refine it.

    Transactions: ``on_commit``/``on_rollback`` hooks, called as
    ``hook(transaction)`` (see :mod:`sluice.transactions`); also as decorators,
    ``@my_task.on_rollback``.
    """
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str:
    """A ``cache_key_fn`` keyed on the task's source code and its arguments."""
    from sluice.cache_policies import task_input_hash as compute

    return compute(context, arguments)
