"""Retry policy: pure functions, no sleeping."""

from __future__ import annotations

import random

import pytest

from sluice.retries import (
    RetryCondition,
    RetryPolicy,
    exponential_backoff,
    retry_delay,
    should_retry,
)
from sluice.states import State


def test_list_delays_are_used_in_order_and_the_last_repeats() -> None:
    policy = RetryPolicy.build(5, [1, 2, 4])
    assert [retry_delay(policy, n) for n in range(1, 6)] == [1, 2, 4, 4, 4]


def test_number_delay_applies_to_every_retry() -> None:
    policy = RetryPolicy.build(3, 30)
    assert {retry_delay(policy, n) for n in (1, 2, 3)} == {30.0}


def test_callable_delay_receives_retry_count() -> None:
    policy = RetryPolicy.build(3, exponential_backoff(2))
    assert [retry_delay(policy, n) for n in (1, 2, 3)] == [2, 4, 8]


def test_jitter_stays_within_factor() -> None:
    policy = RetryPolicy.build(1, 10, jitter_factor=0.5)
    rng = random.Random(7)
    delays = [retry_delay(policy, 1, rng) for _ in range(200)]
    assert all(10 <= d <= 15 for d in delays)
    assert len(set(delays)) > 1


def test_retries_stop_after_the_configured_count() -> None:
    policy = RetryPolicy.build(2, 0)
    exc = ValueError("x")
    assert should_retry(policy, 1, exc)
    assert should_retry(policy, 2, exc)
    assert not should_retry(policy, 3, exc)


def test_condition_can_refuse_and_a_broken_condition_means_no_retry() -> None:
    only_io = RetryPolicy.build(3, 0, condition=lambda e: isinstance(e, OSError))
    assert should_retry(only_io, 1, OSError())
    assert not should_retry(only_io, 1, ValueError())

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("bug in predicate")

    reported: list[BaseException] = []
    policy = RetryPolicy.build(3, 0, condition=broken)
    assert not should_retry(policy, 1, OSError(), on_error=reported.append)
    assert [str(e) for e in reported] == ["bug in predicate"]


def test_three_argument_conditions_get_task_run_and_a_failed_state_that_reraises() -> None:
    seen: list[tuple[object, object, State]] = []

    def only_key_errors(task: object, task_run: object, state: State) -> bool:
        seen.append((task, task_run, state))
        try:
            state.result()
        except KeyError:
            return True
        except Exception:
            return False
        return False

    cond = RetryCondition.of(only_key_errors)
    assert cond.allows("the task", "the run", KeyError("k"))
    assert not cond.allows("the task", "the run", ValueError("v"))
    task, task_run, state = seen[0]
    assert (task, task_run) == ("the task", "the run")
    assert state.is_failed() and "KeyError" in (state.message or "")


def test_the_calling_form_is_read_from_the_signature_once() -> None:
    import functools

    def three(task: object, run: object, state: object, extra: int = 0) -> bool:
        return True

    assert RetryCondition.of(lambda exc: True).takes_exception is True
    assert RetryCondition.of(lambda *args: True).takes_exception is False
    assert RetryCondition.of(three).takes_exception is False
    assert RetryCondition.of(functools.partial(three, extra=1)).takes_exception is False
    with pytest.raises(TypeError, match="task, task_run, state"):
        RetryCondition.of(lambda a, b: True)
    with pytest.raises(TypeError, match="callable"):
        RetryCondition.of(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("retries", "delay", "jitter"), [(-1, 0, None), (1, -5, None), (1, [1, -1], None), (1, 1, -0.1)]
)
def test_invalid_policies_are_rejected(retries: int, delay: object, jitter: float | None) -> None:
    with pytest.raises(ValueError):
        RetryPolicy.build(retries, delay, jitter)  # type: ignore[arg-type]
