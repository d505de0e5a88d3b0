"""The attempt loop shared by task runs and flow runs, in its sync and async colours.

Both run kinds make the same moves: begin an attempt, call the function under
its time limit, turn the outcome into a final state or a retry delay, wait,
repeat. The decisions belong to the run kind (:class:`Attempts`); the loop
and the waiting belong here, written once per colour.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from sluice.engine.timeouts import call_with_time_limit
from sluice.states import State


class Attempts(Protocol):
    """The decisions of one run across its attempts."""

    def begin_attempt(self) -> None: ...

    def on_return(self, value: Any) -> State: ...

    def on_exception(self, exc: BaseException) -> State | float:
        """A final state, or the seconds to wait before the next attempt."""
        ...

    def timeout_error(self) -> BaseException: ...


def run_attempts_sync(
    attempts: Attempts,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> State:
    """Attempt ``fn`` in this thread until a final state."""
    while True:
        attempts.begin_attempt()
        try:
            value = call_with_time_limit(fn, args, kwargs, timeout, attempts.timeout_error)
        except BaseException as exc:
            outcome = attempts.on_exception(exc)
        else:
            outcome = attempts.on_return(value)
        if isinstance(outcome, State):
            return outcome
        time.sleep(outcome)


async def run_attempts_async(
    attempts: Attempts,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> State:
    """Attempt the coroutine function ``fn`` until a final state."""
    while True:
        attempts.begin_attempt()
        try:
            if timeout:
                try:
                    value = await asyncio.wait_for(fn(*args, **kwargs), timeout)
                except asyncio.TimeoutError:
                    raise attempts.timeout_error() from None
            else:
                value = await fn(*args, **kwargs)
        except BaseException as exc:
            outcome = attempts.on_exception(exc)
        else:
            outcome = attempts.on_return(value)
        if isinstance(outcome, State):
            return outcome
        await asyncio.sleep(outcome)
