"""``@flow``: the definition of a flow. How a call runs lives in ``sluice.engine``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from typing_extensions import ParamSpec

from sluice.engine.hooks import Hooks
from sluice.engine.retries import RetryDelay, RetryPolicy

if TYPE_CHECKING:
    import datetime as _dt

    from sluice.deployments.specs import DeploymentSpec
    from sluice.results.serializers import Serializer
    from sluice.schemas import DeploymentRecord, FlowRunRecord
    from sluice.states import State
    from sluice.task_runners.base import TaskRunner

P = ParamSpec("P")
R = TypeVar("R")

FlowHook = Callable[["Flow[..., Any]", "FlowRunRecord", "State"], Any]


class Flow(Generic[P, R]):
    """A Python function whose calls are tracked flow runs.

    Calling a flow runs it now and returns its result (a coroutine for
    ``async def`` flows called where an event loop runs or at top level). A
    flow called inside another flow is a subflow: a child run linked to its parent.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        log_prints: bool | None = None,
        task_runner: TaskRunner | None = None,
        tags: Iterable[str] | None = None,
        on_completion: list[FlowHook] | None = None,
        on_failure: list[FlowHook] | None = None,
        on_crashed: list[FlowHook] | None = None,
        on_cancellation: list[FlowHook] | None = None,
        on_running: list[FlowHook] | None = None,
        persist_result: bool | None = None,
        result_storage: str | None = None,
        result_serializer: str | Serializer | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {type(fn).__name__}")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn)
        self.version = version
        self.flow_run_name = flow_run_name
        self.retries = int(retries or 0)
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_policy = RetryPolicy.build(retries, retry_delay_seconds)
        self.timeout_seconds = timeout_seconds
        self.should_validate_parameters = validate_parameters
        self.log_prints = log_prints
        self.task_runner = task_runner
        self.tags = frozenset(tags or ())
        #: hooks by state entered; each list is also a decorator (``@my_flow.on_failure``)
        self.on_completion: Hooks[FlowHook] = Hooks(on_completion or [])
        self.on_failure: Hooks[FlowHook] = Hooks(on_failure or [])
        self.on_crashed: Hooks[FlowHook] = Hooks(on_crashed or [])
        self.on_cancellation: Hooks[FlowHook] = Hooks(on_cancellation or [])
        self.on_running: Hooks[FlowHook] = Hooks(on_running or [])
        from sluice.results.serializers import resolve_serializer

        #: default for this flow's tasks too, unless a task says otherwise
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = resolve_serializer(result_serializer)
        self.isasync = inspect.iscoroutinefunction(fn)
        params = inspect.signature(fn).parameters
        self._accepts_return_state = "return_state" in params
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its result (``return_state=True``: its final State)."""
        from sluice.engine.flow_engine import call_flow

        return_state = False
        if not self._accepts_return_state:
            return_state = bool(kwargs.pop("return_state", False))
        return call_flow(self, args, kwargs, return_state)

    def deploy(
        self,
        name: str,
        *,
        work_pool_name: str = "default",
        work_queue_name: str = "default",
        cron: str | list[str] | None = None,
        interval: float | str | _dt.timedelta | list[Any] | None = None,
        anchor_date: _dt.datetime | str | None = None,
        rrule: str | list[str] | None = None,
        timezone: str | None = None,
        schedule: Any = None,
        schedules: list[Any] | None = None,
        parameters: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        description: str | None = None,
        version: str | None = None,
        paused: bool = False,
        concurrency_limit: int | None = None,
        max_active_runs: int | None = None,
        catchup: bool = False,
        entrypoint: str | None = None,
    ) -> DeploymentRecord:
        """Create or update the deployment ``<flow name>/<name>``: a worker of
        ``work_pool_name`` then runs it on its schedules or when triggered
        (``run_deployment``). ``schedules=[Cron(...), Interval(...)]`` (from
        :mod:`sluice.schedules`) gives each schedule its own parameters. See
        :func:`sluice.deployments.deploying.deploy`."""
        from sluice.deployments.deploying import deploy

        return deploy(
            self,
            name=name,
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            cron=cron,
            interval=interval,
            anchor_date=anchor_date,
            rrule=rrule,
            timezone=timezone,
            schedule=schedule,
            schedules=schedules,
            parameters=parameters,
            tags=tags,
            description=description,
            version=version,
            paused=paused,
            concurrency_limit=concurrency_limit,
            max_active_runs=max_active_runs,
            catchup=catchup,
            entrypoint=entrypoint,
        )

    def to_deployment(self, name: str, **options: Any) -> DeploymentSpec:
        """A deployment of this flow for :func:`sluice.serve`, not stored yet.

        ``options`` are the keyword arguments of :meth:`deploy` (``cron``,
        ``interval``, ``rrule``, ``timezone``, ``schedules``, ``parameters``,
        ``tags``, ...).
        """
        from sluice.deployments.specs import DeploymentSpec

        return DeploymentSpec(name=name, flow=self, options=dict(options))

    def serve(self, name: str, *, limit: int | None = None, **options: Any) -> Any:
        """Register the deployment ``<flow name>/<name>`` and run its runs in this
        process until SIGINT/SIGTERM (no pool or worker needed); see :func:`sluice.serve`.

        ``options`` are the keyword arguments of :meth:`deploy`.
        """
        from sluice.serving import serve

        return serve(self.to_deployment(name, **options), limit=limit)

    def with_options(self, **overrides: Any) -> Flow[P, R]:
        """A copy of this flow with some decorator arguments replaced."""
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "flow_run_name": self.flow_run_name,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "validate_parameters": self.should_validate_parameters,
            "log_prints": self.log_prints,
            "task_runner": self.task_runner,
            "tags": self.tags,
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "on_crashed": self.on_crashed,
            "on_cancellation": self.on_cancellation,
            "on_running": self.on_running,
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
        }
        unknown = set(overrides) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unknown options: {', '.join(sorted(unknown))}")
        current.update(overrides)
        return Flow(self.fn, **current)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay = None,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    log_prints: bool | None = None,
    task_runner: TaskRunner | None = None,
    tags: Iterable[str] | None = None,
    on_completion: list[FlowHook] | None = None,
    on_failure: list[FlowHook] | None = None,
    on_crashed: list[FlowHook] | None = None,
    on_cancellation: list[FlowHook] | None = None,
    on_running: list[FlowHook] | None = None,
    persist_result: bool | None = None,
    result_storage: str | None = None,
    result_serializer: str | Serializer | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Turn a function into a :class:`Flow`; use bare (``@flow``) or with options.

    Options mirror Prefect's: ``name`` (default: the function's name),
    ``description``, ``version``, ``flow_run_name`` (template with parameter
    names, or callable), ``retries``, ``retry_delay_seconds``, ``timeout_seconds``,
    ``validate_parameters`` (pydantic, from type hints), ``log_prints``,
    ``task_runner``, ``tags``, and hooks called as ``hook(flow, flow_run, state)``:
    ``on_running``, ``on_completion``, ``on_failure``, ``on_crashed``,
    ``on_cancellation``.

    The run's final state follows from what the function returns (states,
    futures, or a value); see :mod:`sluice.engine.final_state`.
    """
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
