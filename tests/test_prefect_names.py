"""Names Prefect code imports, under ``sluice``: each behaves as Prefect documents it.

(Schedules, caching by DEFAULT and transactions have their own test files.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sluice import flow, task
from sluice.futures import SluiceFuture
from sluice.states import State, StateType
from tests.helpers import only_flow_run, states, task_runs


def test_the_test_harness_under_prefects_module_path_isolates_even_a_configured_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.testing import sluice_test_harness as short
    from sluice.testing.utilities import sluice_test_harness

    assert sluice_test_harness is short
    # A developer's shell pointing at a server and a database: the harness must
    # record into its own throwaway store instead, then put the settings back.
    monkeypatch.setenv("SLUICE_API_URL", "http://127.0.0.1:9/unreachable")
    monkeypatch.setenv("SLUICE_DATABASE_URL", f"sqlite:///{tmp_path / 'real.db'}")

    @flow
    def answer() -> int:
        return 42

    with sluice_test_harness(server_startup_timeout=30) as home:
        assert answer() == 42
        assert only_flow_run("answer").state_type is StateType.COMPLETED
        assert (home / "sluice.db").is_file()
    assert not home.exists()
    assert not (tmp_path / "real.db").exists()
    assert os.environ["SLUICE_API_URL"] == "http://127.0.0.1:9/unreachable"
    assert os.environ["SLUICE_DATABASE_URL"].endswith("real.db")


def test_hook_annotation_types_are_the_types_hooks_receive() -> None:
    from sluice.client.schemas import FlowRun as FlowRunAgain
    from sluice.client.schemas.objects import FlowRun, TaskRun
    from sluice.client.schemas.objects import State as ObjectsState

    assert FlowRunAgain is FlowRun and ObjectsState is State
    seen: list[tuple[str, Any, Any]] = []

    def task_hook(tsk: Any, task_run: TaskRun, state: ObjectsState) -> None:
        seen.append(("task", task_run, state))

    def flow_hook(flw: Any, flow_run: FlowRun, state: ObjectsState) -> None:
        seen.append(("flow", flow_run, state))

    @task(on_completion=[task_hook])
    def step() -> int:
        return 1

    @flow(on_completion=[flow_hook])
    def hooked() -> int:
        return step()

    hooked()
    assert [kind for kind, _, _ in seen] == ["task", "flow"]
    (_, task_run, task_state), (_, flow_run, flow_state) = seen
    assert isinstance(task_run, TaskRun) and task_run.name.startswith("step")
    assert isinstance(flow_run, FlowRun) and flow_run.flow_name == "hooked"
    assert isinstance(task_state, ObjectsState) and task_state.is_completed()
    assert isinstance(flow_state, ObjectsState) and flow_state.is_completed()


def test_state_is_subscriptable_in_annotations() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def typed() -> int:
        state: State[int] = add(1, 2, return_state=True)
        return int(state.result())

    assert State[int].__origin__ is State  # type: ignore[attr-defined]
    assert typed() == 3


def test_exponential_backoff_from_sluice_tasks_with_jitter_sets_the_recorded_delays() -> None:
    from sluice.tasks import exponential_backoff

    assert exponential_backoff(backoff_factor=10)(3) == [10, 20, 40]
    assert len(exponential_backoff(1)(500)) == 50  # Prefect's cap on configured delays

    @task(
        retries=3,
        retry_delay_seconds=exponential_backoff(backoff_factor=0.01),
        retry_jitter_factor=1,
    )
    def always_fails() -> None:
        raise OSError("flaky")

    @flow
    def backoff() -> None:
        always_fails()

    with pytest.raises(OSError):
        backoff()
    (run,) = task_runs(only_flow_run("backoff").id)
    assert run.run_count == 4
    delays = [
        s.details["retry_delay_seconds"]
        for s in states(run.id)
        if s.name == "AwaitingRetry" and s.details
    ]
    assert len(delays) == 3
    for base, delay in zip((0.01, 0.02, 0.04), delays, strict=True):
        assert base <= delay <= 2 * base  # jitter factor 1: up to twice the delay


# -- argument annotations --------------------------------------------------------------


def test_quote_passes_the_value_untouched_and_records_no_upstream_edge() -> None:
    received: list[Any] = []

    @task
    def produce() -> int:
        return 7

    @task
    def consume(value: Any) -> None:
        received.append(value)

    @flow
    def quoted() -> None:
        from sluice.utilities.annotations import quote

        future = produce.submit()
        future.wait()
        consume(quote(future))
        consume(quote({"rows": [1, 2]}))

    quoted()
    assert isinstance(received[0], SluiceFuture)
    assert received[1] == {"rows": [1, 2]}
    runs = {r.name: r for r in task_runs(only_flow_run("quoted").id)}
    assert runs["consume-0"].upstream_ids == []


def test_opaque_resolves_the_wrapped_future_but_never_walks_into_a_value() -> None:
    received: list[Any] = []

    @task
    def produce() -> int:
        return 7

    @task
    def consume(value: Any) -> None:
        received.append(value)

    @flow
    def opaque_flow() -> None:
        from sluice.utilities.annotations import opaque

        first = produce.submit()
        consume(opaque(first))
        nested = produce.submit()
        consume(opaque([nested]))
        nested.wait()
        consume(opaque("plain"))

    opaque_flow()
    assert received[0] == 7
    assert isinstance(received[1], list) and isinstance(received[1][0], SluiceFuture)
    assert received[2] == "plain"
    runs = {r.name: r for r in task_runs(only_flow_run("opaque-flow").id)}
    assert runs["consume-0"].upstream_ids == [runs["produce-0"].id]
    assert runs["consume-1"].upstream_ids == []


def test_an_annotation_around_a_plain_value_reaches_the_task_unwrapped() -> None:
    from sluice import allow_failure, unmapped
    from sluice.utilities.annotations import NotSet, opaque, quote

    @task
    def identity(value: Any) -> Any:
        return value

    @flow
    def plain_values() -> list[Any]:
        return [
            identity(allow_failure(1)),
            identity(quote(2)),
            identity(value=opaque(3)),
            identity(unmapped(4)),
        ]

    assert plain_values() == [1, 2, 3, 4]
    assert quote(2).unquote() == 2 and quote(2) == quote(2) and quote(2) != opaque(2)
    assert NotSet is not None
