"""``cache_policy=DEFAULT`` means what it means in Prefect; Sluice still caches nothing unasked."""

from __future__ import annotations

from typing import Any

from sluice import flow, task
from sluice.cache_policies import DEFAULT, INPUTS, CacheKeyFnPolicy, CachePolicy
from sluice.tasks import task_input_hash
from tests.helpers import flow_runs, task_runs


def test_default_answers_a_repeated_identical_call_within_one_flow_run_only() -> None:
    calls: list[int] = []

    @task(cache_policy=DEFAULT)
    def add_one(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow
    def repeated() -> list[int]:
        return [add_one(1), add_one(1), add_one(2)]

    assert repeated() == [2, 2, 3]
    assert calls == [1, 2]  # the second add_one(1) did not run
    run = flow_runs("repeated")[0]
    names = [t.state_name for t in sorted(task_runs(run.id), key=lambda t: t.created)]
    assert names == ["Completed", "Cached", "Completed"]

    assert repeated() == [2, 2, 3]  # a new flow run: RUN_ID keeps the runs apart
    assert calls == [1, 2, 1, 2]


def test_without_a_policy_a_task_called_twice_runs_twice() -> None:
    calls: list[int] = []

    @task
    def side_effect(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def twice() -> None:
        side_effect(1)
        side_effect(1)

    twice()
    assert calls == [1, 1]


def test_default_outside_a_flow_shares_nothing() -> None:
    calls: list[int] = []

    @task(cache_policy=DEFAULT)
    def standalone(x: int) -> int:
        calls.append(x)
        return x

    assert standalone(5) == 5 and standalone(5) == 5
    assert calls == [5, 5]


def test_default_minus_an_argument_ignores_it() -> None:
    calls: list[str] = []

    @task(cache_policy=DEFAULT - "verbose")
    def fetch(key: str, verbose: bool = False) -> str:
        calls.append(key)
        return key.upper()

    @flow
    def quiet_or_not() -> list[str]:
        return [fetch("a"), fetch("a", verbose=True)]

    assert quiet_or_not() == ["A", "A"]
    assert calls == ["a"]


def test_cache_key_fn_policy_and_the_docs_within_flow_run_key() -> None:
    calls: list[str] = []

    def cache_within_flow_run(context: Any, parameters: dict[str, Any]) -> str:
        # Prefect's documented pattern: scope a task_input_hash to the flow run.
        return f"{context.task_run.flow_run_id}-{task_input_hash(context, parameters)}"

    @task(cache_policy=CacheKeyFnPolicy(cache_key_fn=cache_within_flow_run))
    def scoped(x: int) -> int:
        calls.append(f"scoped{x}")
        return x

    @task(cache_policy=CachePolicy.from_cache_key_fn(lambda ctx, params: "static") + INPUTS)
    def static(x: int) -> int:
        calls.append(f"static{x}")
        return x

    @flow
    def keyed() -> None:
        scoped(1)
        scoped(1)
        static(1)
        static(1)

    keyed()
    keyed()
    # scoped: once per flow run; static (with INPUTS): once across runs
    assert calls == ["scoped1", "static1", "scoped1"]
