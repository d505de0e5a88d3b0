"""Retry policy as validated data plus pure functions (no clocks, no sleeping)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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
        condition: a predicate ``f(exception) -> bool``; False means do not retry.
    """

    retries: int = 0
    delays: tuple[float, ...] = (0.0,)
    jitter_factor: float | None = None
    condition: Callable[[BaseException], bool] | None = None

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
        """
        count = int(retries or 0)
        if count < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if jitter_factor is not None and jitter_factor < 0:
            raise ValueError(f"retry_jitter_factor must be >= 0, got {jitter_factor}")
        delays = _normalize_delays(retry_delay_seconds, count)
        return cls(count, delays, jitter_factor, condition)


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


def should_retry(policy: RetryPolicy, attempts_made: int, exc: BaseException) -> bool:
    """Whether a call that failed with ``exc`` after ``attempts_made`` attempts runs again.

    A condition that itself raises means "do not retry": a broken predicate
    must not turn into an endless loop.
    """
    if attempts_made > policy.retries:
        return False
    if policy.condition is None:
        return True
    try:
        return bool(policy.condition(exc))
    except Exception:
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


def retry_condition_accepts(fn: Callable[..., Any]) -> Callable[[BaseException], bool]:
    """Adapt a user ``retry_condition_fn(task, task_run, state)`` or ``fn(exc)``.

    Prefect-style conditions take three arguments; the simpler one-argument
    form receives the exception. Both are accepted.
    """
    import inspect

    try:
        arity = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        arity = 1
    if arity >= 3:
        return lambda exc: bool(fn(None, None, exc))
    return lambda exc: bool(fn(exc))
