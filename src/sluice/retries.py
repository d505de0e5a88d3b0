"""Retry policy as validated data plus pure functions (no clocks, no sleeping)."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.states import Failed, State
from sluice.utilities.describe import describe

#: ``retry_delay_seconds`` accepts a number, a list (one per retry, the last
#: repeating), or a callable ``f(retries) -> list`` like :func:`exponential_backoff`.
RetryDelay = float | int | Sequence[float] | Callable[[int], Sequence[float]] | None


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before running a failed call again.

    Attributes:
        retries: how many times to retry after the first attempt.
        delays: seconds to wait before retry 1, 2, ... (the last one repeats).
        jitter_factor: each delay is drawn from ``[d, d * (1 + jitter_factor)]``.
        condition: the user's ``retry_condition_fn``; False means do not retry.
    """

    retries: int = 0
    delays: tuple[float, ...] = (0.0,)
    jitter_factor: float | None = None
    condition: RetryCondition | None = None

    @classmethod
    def build(
        cls,
        retries: int | None,
        retry_delay_seconds: RetryDelay,
        jitter_factor: float | None = None,
        condition: Callable[..., bool] | None = None,
    ) -> RetryPolicy:
        """Validate decorator arguments into a policy.

        Raises:
            ValueError: a negative retry count, delay or jitter factor.
            TypeError: a condition that takes neither ``(task, task_run, state)``
                nor ``(exception)``.
        """
        count = int(retries or 0)
        if count < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if jitter_factor is not None and jitter_factor < 0:
            raise ValueError(f"retry_jitter_factor must be >= 0, got {jitter_factor}")
        delays = _normalize_delays(retry_delay_seconds, count)
        return cls(
            count, delays, jitter_factor, RetryCondition.of(condition) if condition else None
        )


def _normalize_delays(value: RetryDelay, retries: int) -> tuple[float, ...]:
    if value is None:
        return (0.0,)
    if callable(value):
        value = value(retries)
    if isinstance(value, (int, float)):
        delays: tuple[float, ...] = (float(value),)
    else:
        delays = tuple(float(v) for v in value) or (0.0,)
    if any(d < 0 for d in delays):
        raise ValueError(f"retry_delay_seconds must not be negative, got {value!r}")
    return delays


@dataclass(frozen=True)
class RetryCondition:
    """A user's ``retry_condition_fn``, and how it is called.

    Prefect's form is ``fn(task, task_run, state) -> bool``, where ``state`` is
    the attempt's Failed state: ``state.result()`` re-raises the exception, so
    a condition can ``try: state.result() except HTTPError as e: ...``. A
    function of exactly one parameter is called ``fn(exception)`` instead.
    ``async`` conditions are awaited.
    """

    fn: Callable[..., Any]
    #: called as ``fn(exception)`` rather than ``fn(task, task_run, state)``
    takes_exception: bool = False

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> RetryCondition:
        """Decide once how ``fn`` is called.

        Raises:
            TypeError: ``fn`` is not callable, or accepts neither form.
        """
        if not callable(fn):
            raise TypeError(f"retry_condition_fn must be callable, got {type(fn).__name__}")
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # no signature to read (a builtin): Prefect's form
            return cls(fn)
        positional = [
            p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        required = [p for p in positional if p.default is p.empty]
        varargs = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        if varargs or len(positional) >= 3:
            if len(required) <= 3:
                return cls(fn)
        elif len(required) == 1 or (len(positional) == 1 and not required):
            return cls(fn, takes_exception=True)
        raise TypeError(
            "retry_condition_fn must accept (task, task_run, state), as Prefect calls it, "
            f"or a single exception; {getattr(fn, '__name__', fn)!r} takes {len(positional)} "
            "positional arguments"
        )

    def allows(self, task: Any, task_run: Any, exc: BaseException) -> bool:
        """The condition's verdict on an attempt that failed with ``exc`` (it may raise)."""
        if self.takes_exception:
            verdict = self.fn(exc)
        else:
            verdict = self.fn(task, task_run, failed_attempt_state(exc))
        if inspect.isawaitable(verdict):
            # asyncio loads only for an async condition: ``import sluice`` (which
            # loads this module) stays without it.
            from sluice.utilities.asyncs import run_awaitable_sync

            verdict = run_awaitable_sync(verdict)
        return bool(verdict)


def failed_attempt_state(exc: BaseException) -> State:
    """The Failed state a retry condition is shown: ``state.result()`` raises ``exc``."""
    return Failed(message=f"Task run encountered an exception {describe(exc)}", exception=exc)


def should_retry(
    policy: RetryPolicy,
    attempts_made: int,
    exc: BaseException,
    task: Any = None,
    task_run: Any = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> bool:
    """Whether a call that failed with ``exc`` after ``attempts_made`` attempts runs again.

    A condition that itself raises means "do not retry" (reported to
    ``on_error``): a broken predicate must not turn into an endless loop.
    """
    if attempts_made > policy.retries:
        return False
    if policy.condition is None:
        return True
    try:
        return policy.condition.allows(task, task_run, exc)
    except Exception as error:
        if on_error is not None:
            on_error(error)
        return False


def retry_delay(policy: RetryPolicy, retry_number: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based)."""
    index = min(retry_number - 1, len(policy.delays) - 1)
    delay = policy.delays[max(index, 0)]
    if policy.jitter_factor:
        r = rng or random
        delay = delay * (1 + r.random() * policy.jitter_factor)
    return delay


#: most retry delays a callable ``retry_delay_seconds`` is asked for
MAX_RETRY_DELAYS = 50


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """A ``retry_delay_seconds`` callable: ``factor * 2**n`` seconds before retry n+1.

    ``retries=3, retry_delay_seconds=exponential_backoff(10)`` waits 10, 20 and
    40 s; with ``retry_jitter_factor`` each delay is then stretched at random
    (see :func:`retry_delay`). At most 50 delays are made (the last repeats).
    """

    def delays(retries: int) -> list[float]:
        count = min(max(retries, 1), MAX_RETRY_DELAYS)
        return [backoff_factor * (2**n) for n in range(count)]

    return delays
