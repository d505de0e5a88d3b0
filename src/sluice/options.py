"""The options of ``@task`` and ``@flow``: one frozen dataclass each.

Each option is declared once, here, with its default; everything else is
derived from that declaration: the keyword arguments of the decorators (their
types too: :func:`keywords_of` hands the dataclass's signature to type
checkers), ``with_options`` (:func:`dataclasses.replace`), and the validation
(``__post_init__``), which runs again on every replaced copy.

What an option *means* at run time is the engine's business; what a task or
flow derives from its function (the default name and description) is the
business of :class:`~sluice.tasks.Task` and :class:`~sluice.flows.Flow`.
"""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import ParamSpec

from sluice.retries import RetryDelay, RetryPolicy

if TYPE_CHECKING:
    from sluice.cache_policies import CachePolicy
    from sluice.flows import Flow
    from sluice.results.serializers import Serializer
    from sluice.schemas import FlowRunRecord, TaskRunRecord
    from sluice.states import State
    from sluice.task_runners.base import TaskRunner
    from sluice.tasks import Task
    from sluice.transactions import TransactionHook

H = TypeVar("H", bound=Callable[..., Any])
T = TypeVar("T")
OptionsP = ParamSpec("OptionsP")

#: ``hook(task, task_run, state)``
TaskHook = Callable[["Task[..., Any]", "TaskRunRecord", "State"], Any]
#: ``hook(flow, flow_run, state)``
FlowHook = Callable[["Flow[..., Any]", "FlowRunRecord", "State"], Any]


class Hooks(list[H]):
    """The hooks of one kind of state change (a list), usable as a decorator too::

    @my_flow.on_completion
    def notify(flow, flow_run, state): ...
    """

    def __call__(self, hook: H) -> H:
        self.append(hook)
        return hook


def keywords_of(
    options: Callable[OptionsP, Any],
) -> Callable[[Callable[..., T]], Callable[OptionsP, T]]:
    """Give the decorated function the keyword arguments of ``options`` (for type
    checkers: at run time the function is returned as it is).

    ``@task(retries=2)`` is thus checked against :class:`TaskOptions` itself,
    and a new option needs no second declaration in the decorator.
    """
    return lambda fn: fn


def _serializer(choice: str | Serializer | None) -> Serializer | None:
    """The serializer ``choice`` names (None: automatic).

    Raises:
        ValueError: an unknown name.
    """
    if choice is None:
        return None
    # Loaded for the tasks that choose (``import sluice`` stays without json).
    from sluice.results.serializers import resolve_serializer

    return resolve_serializer(choice)


def _cache_policy(
    policy: CachePolicy | None, key_fn: Callable[..., str | None] | None
) -> CachePolicy | None:
    """The cache policy in force (None: no caching across runs)."""
    if policy is None and key_fn is None:
        return None
    # Loaded for the tasks that cache (``import sluice`` stays without hashlib).
    from sluice.cache_policies import resolve_policy

    return resolve_policy(policy, key_fn)


def _check_timeout(timeout_seconds: float | None) -> None:
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")


def _set(options: object, name: str, value: Any) -> None:
    # Normalising an option of a frozen dataclass in __post_init__.
    object.__setattr__(options, name, value)


#: marks the fields that hold hooks
_HOOKS = {"hooks": True}


def _normalise(options: Any) -> None:
    """Tags as a frozenset; each hook option as a new :class:`Hooks` list (each options
    object owns its lists: a hook added to a copy is not added to the original)."""
    _set(options, "tags", frozenset(options.tags or ()))
    for option in fields(options):
        if option.metadata is not None and option.metadata.get("hooks"):
            _set(options, option.name, Hooks(getattr(options, option.name) or ()))


@dataclass(frozen=True, kw_only=True)
class TaskOptions:
    """What ``@task(...)`` accepts; ``Task.with_options(...)`` replaces some of it.

    Options mirror Prefect's: ``name`` (default: the function's name),
    ``description`` (default: its docstring), ``tags``, ``version``,
    ``retries``, ``retry_delay_seconds`` (number, list, or callable such as
    :func:`~sluice.retries.exponential_backoff`), ``retry_jitter_factor``,
    ``retry_condition_fn`` (called as ``fn(task, task_run, state)``;
    ``state.result()`` re-raises the attempt's exception), ``timeout_seconds``,
    ``task_run_name`` (template with parameter names, or callable),
    ``log_prints``, and hooks called as ``hook(task, task_run, state)``:
    ``on_running``, ``on_completion``, ``on_failure``.

    Results: ``persist_result`` (default: on), ``result_storage`` (a folder),
    ``result_serializer`` (``"json"``/``"pickle"``), ``result_storage_key``
    (template with ``parameters``, ``task_run``, ``flow_run_id`` and parameter
    names), ``cache_result_in_memory``. Caching across runs is off unless
    ``cache_policy`` or ``cache_key_fn`` is given; ``cache_expiration`` and
    ``refresh_cache`` refine it.

    Transactions: ``on_commit``/``on_rollback`` hooks, called as
    ``hook(transaction)`` (see :mod:`sluice.transactions`).

    Raises:
        ValueError: a timeout that is not positive, a negative retry count or
            delay, an unknown serializer, or caching with ``persist_result=False``.
        TypeError: a ``retry_condition_fn`` of neither accepted form.
    """

    name: str | None = None
    description: str | None = None
    tags: Iterable[str] | None = None
    version: str | None = None
    retries: int | None = None
    retry_delay_seconds: RetryDelay = None
    retry_jitter_factor: float | None = None
    retry_condition_fn: Callable[..., bool] | None = None
    timeout_seconds: float | None = None
    task_run_name: str | Callable[[], str] | None = None
    log_prints: bool | None = None
    on_completion: Iterable[TaskHook] | None = field(default=None, metadata=_HOOKS)
    on_failure: Iterable[TaskHook] | None = field(default=None, metadata=_HOOKS)
    on_running: Iterable[TaskHook] | None = field(default=None, metadata=_HOOKS)
    persist_result: bool | None = None
    result_storage: str | None = None
    result_serializer: str | Serializer | None = None
    result_storage_key: str | None = None
    cache_result_in_memory: bool = True
    cache_policy: CachePolicy | None = None
    cache_key_fn: Callable[..., str | None] | None = None
    cache_expiration: datetime.timedelta | None = None
    refresh_cache: bool = False
    on_commit: Iterable[TransactionHook] | None = field(default=None, metadata=_HOOKS)
    on_rollback: Iterable[TransactionHook] | None = field(default=None, metadata=_HOOKS)

    #: derived: when and how long to wait before a retry
    retry_policy: RetryPolicy = field(init=False, repr=False, compare=False)
    #: derived: the cache policy in force (None: never cached across runs)
    effective_cache_policy: CachePolicy | None = field(init=False, repr=False, compare=False)
    #: derived: the serializer object ``result_serializer`` names (None: automatic)
    serializer: Serializer | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_timeout(self.timeout_seconds)
        _normalise(self)
        _set(
            self,
            "retry_policy",
            RetryPolicy.build(
                self.retries,
                self.retry_delay_seconds,
                self.retry_jitter_factor,
                self.retry_condition_fn,
            ),
        )
        _set(self, "serializer", _serializer(self.result_serializer))
        policy = _cache_policy(self.cache_policy, self.cache_key_fn)
        _set(self, "effective_cache_policy", policy)
        if policy is not None and self.persist_result is False:
            named = f"Task {self.name!r}: caching" if self.name else "Caching"
            raise ValueError(
                f"{named} needs a stored result, so it cannot be combined with persist_result=False"
            )


@dataclass(frozen=True, kw_only=True)
class FlowOptions:
    """What ``@flow(...)`` accepts; ``Flow.with_options(...)`` replaces some of it.

    Options mirror Prefect's: ``name`` (default: the function's name),
    ``description`` (default: its docstring), ``version``, ``flow_run_name``
    (template with parameter names, or callable), ``retries``,
    ``retry_delay_seconds``, ``timeout_seconds``, ``validate_parameters``
    (pydantic, from type hints), ``log_prints``, ``task_runner``, ``tags``,
    and hooks called as ``hook(flow, flow_run, state)``: ``on_running``,
    ``on_completion``, ``on_failure``, ``on_crashed``, ``on_cancellation``.
    ``persist_result``, ``result_storage`` and ``result_serializer`` are
    also the defaults of the flow's tasks.

    Raises:
        ValueError: a timeout that is not positive, a negative retry count or
            delay, an unknown serializer.
    """

    name: str | None = None
    description: str | None = None
    version: str | None = None
    flow_run_name: str | Callable[[], str] | None = None
    retries: int | None = None
    retry_delay_seconds: RetryDelay = None
    timeout_seconds: float | None = None
    validate_parameters: bool = True
    log_prints: bool | None = None
    task_runner: TaskRunner | None = None
    tags: Iterable[str] | None = None
    on_completion: Iterable[FlowHook] | None = field(default=None, metadata=_HOOKS)
    on_failure: Iterable[FlowHook] | None = field(default=None, metadata=_HOOKS)
    on_crashed: Iterable[FlowHook] | None = field(default=None, metadata=_HOOKS)
    on_cancellation: Iterable[FlowHook] | None = field(default=None, metadata=_HOOKS)
    on_running: Iterable[FlowHook] | None = field(default=None, metadata=_HOOKS)
    persist_result: bool | None = None
    result_storage: str | None = None
    result_serializer: str | Serializer | None = None

    #: derived: when and how long to wait before a retry of the whole flow
    retry_policy: RetryPolicy = field(init=False, repr=False, compare=False)
    #: derived: the serializer object ``result_serializer`` names (None: automatic)
    serializer: Serializer | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_timeout(self.timeout_seconds)
        _normalise(self)
        _set(self, "retry_policy", RetryPolicy.build(self.retries, self.retry_delay_seconds))
        _set(self, "serializer", _serializer(self.result_serializer))


def hooks_of(option: Iterable[Any] | None) -> Hooks[Any]:
    """A hook option of options built here: the :class:`Hooks` list ``__post_init__``
    made of it (the same list, so a hook added to it stays in the options)."""
    assert isinstance(option, Hooks), "not an option of TaskOptions or FlowOptions"
    return option


class _OptionAttribute:
    """``instance.<option>`` read from ``instance.options`` (see :func:`expose_options`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type[Any]) -> Any:
        if instance is None:
            return self
        return getattr(instance.options, self.name)


def expose_options(cls: type[T], options: type[Any]) -> type[T]:
    """Make each option of ``options`` readable on instances of ``cls`` (which hold
    theirs in ``.options``), unless ``cls`` has or declares an attribute of that
    name (its instances' own attributes are annotated in its body).

    For code written against Prefect, which reads options off a task or flow
    (``my_task.timeout_seconds``); typed code reads ``my_task.options``.
    Class attributes rather than ``__getattr__``: a class with ``__getattr__``
    makes every attribute read of its instances slower, the engine's too.
    """
    declared = inspect.get_annotations(cls)
    for name in option_names(options):
        if not hasattr(cls, name) and name not in declared:
            setattr(cls, name, _OptionAttribute(name))
    return cls


def option_names(options: type[Any]) -> frozenset[str]:
    """The names ``@task``/``@flow`` accept for ``options`` (not the derived fields)."""
    return frozenset(f.name for f in fields(options) if f.init)


__all__ = [
    "FlowHook",
    "FlowOptions",
    "Hooks",
    "TaskHook",
    "TaskOptions",
    "expose_options",
    "hooks_of",
    "keywords_of",
    "option_names",
]
