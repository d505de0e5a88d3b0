"""``@flow``: the definition of a flow. How a call runs lives in ``sluice.engine``.

A :class:`Flow` is the user's function plus its :class:`~sluice.options.FlowOptions`;
the engine reads both. The methods that run, deploy or serve a flow import
the engine, ``sluice.deployments`` or ``sluice.serving`` when called: the only
imports from this module up the layers (see ``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from typing_extensions import ParamSpec

from sluice.options import (
    FlowHook,
    FlowOptions,
    Hooks,
    expose_options,
    hooks_of,
    keywords_of,
    option_names,
)
from sluice.utilities.wrapping import wrap_like

if TYPE_CHECKING:
    import datetime as _dt

    from sluice.deployments.specs import DeploymentSpec
    from sluice.results.serializers import Serializer
    from sluice.retries import RetryPolicy
    from sluice.schemas import DeploymentRecord

P = ParamSpec("P")
R = TypeVar("R")

#: what ``with_options`` (and ``@flow``) accept
OPTION_NAMES = option_names(FlowOptions)


class Flow(Generic[P, R]):
    """A Python function whose calls are tracked flow runs.

    Calling a flow runs it now and returns its result (a coroutine for
    ``async def`` flows called where an event loop runs or at top level). A
    flow called inside another flow is a subflow: a child run linked to its parent.

    Args:
        fn: the function.
        options: its options (``@flow(...)``'s keyword arguments), defaults if None.

    Attributes:
        options: the options as given (read ``flow.options.timeout_seconds``).
        name: the flow's name (``options.name`` or the function's).
        description: ``options.description`` or the function's docstring.
        tags: ``options.tags``, a frozenset.
        retries: how many times a failed run is run again.
        on_running, on_completion, on_failure, on_crashed, on_cancellation:
            the hooks, each a list that is also a decorator (``@my_flow.on_failure``).
    """

    fn: Callable[P, R]
    options: FlowOptions
    name: str
    description: str | None
    tags: frozenset[str]
    retries: int
    retry_policy: RetryPolicy
    #: the default of this flow's tasks too, unless a task says otherwise
    result_serializer: Serializer | None
    on_completion: Hooks[FlowHook]
    on_failure: Hooks[FlowHook]
    on_crashed: Hooks[FlowHook]
    on_cancellation: Hooks[FlowHook]
    on_running: Hooks[FlowHook]
    isasync: bool

    def __init__(self, fn: Callable[P, R], options: FlowOptions | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {type(fn).__name__}")
        options = options or FlowOptions()
        self.fn = fn
        self.options = options
        self.name = options.name or fn.__name__
        self.description = options.description or inspect.getdoc(fn)
        self.tags = frozenset(options.tags or ())
        self.retry_policy = options.retry_policy
        self.retries = self.retry_policy.retries
        self.result_serializer = options.serializer
        # The options' own lists: a hook added with a decorator stays in the
        # options, so with_options copies carry it.
        self.on_completion = hooks_of(options.on_completion)
        self.on_failure = hooks_of(options.on_failure)
        self.on_crashed = hooks_of(options.on_crashed)
        self.on_cancellation = hooks_of(options.on_cancellation)
        self.on_running = hooks_of(options.on_running)
        self.isasync = inspect.iscoroutinefunction(fn)
        params = inspect.signature(fn).parameters
        self._accepts_return_state = "return_state" in params
        wrap_like(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its result (``return_state=True``: its final State)."""
        from sluice.engine.flow_engine import call_flow

        return_state = False
        if not self._accepts_return_state:
            return_state = bool(kwargs.pop("return_state", False))
        result: R = call_flow(self, args, kwargs, return_state)
        return result

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
        """A copy of this flow with some options replaced (the keyword arguments of
        ``@flow``); hooks added with decorators are kept.

        Raises:
            TypeError: a name that is not an option.
        """
        unknown = set(overrides) - OPTION_NAMES
        if unknown:
            raise TypeError(f"with_options() got unknown options: {', '.join(sorted(unknown))}")
        return Flow(self.fn, dataclasses.replace(self.options, **overrides))

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


# Prefect code reads options off the flow (``my_flow.retry_delay_seconds``); typed
# code reads ``.options``. Not for type checkers, which see ``.options`` only.
expose_options(Flow, FlowOptions)


class _MakesFlow(Protocol):
    """What ``@flow(...)`` with options returns: a decorator keeping the signature."""

    def __call__(self, fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
@keywords_of(FlowOptions)
def flow() -> _MakesFlow: ...


def flow(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Turn a function into a :class:`Flow`; use bare (``@flow``) or with options.

    The options are the fields of :class:`~sluice.options.FlowOptions` (Prefect's:
    ``name``, ``flow_run_name``, ``retries``, ``timeout_seconds``,
    ``validate_parameters``, ``log_prints``, ``task_runner``, ``tags``, and
    hooks called as ``hook(flow, flow_run, state)``: ``on_running``,
    ``on_completion``, ``on_failure``, ``on_crashed``, ``on_cancellation`` ...).

    The run's final state follows from what the function returns (states,
    futures, or a value); see :mod:`sluice.engine.final_state`.

    Raises:
        TypeError: an unknown option, or ``fn`` not callable.
        ValueError: an option's value is refused (see :class:`~sluice.options.FlowOptions`).
    """
    chosen = FlowOptions(**options)
    if fn is not None:
        return Flow(fn, chosen)
    return lambda fn: Flow(fn, chosen)
