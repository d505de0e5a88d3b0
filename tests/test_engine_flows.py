"""Flows and tasks end to end, recorded in a real SQLite store."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from sluice import allow_failure, flow, get_run_logger, tags, task, unmapped
from sluice.errors import MissingContextError, ParameterValidationError
from sluice.futures import as_completed, wait
from sluice.states import State, StateType
from sluice.task_runners import ThreadPoolTaskRunner
from tests.helpers import (
    flow_runs,
    log_text,
    logs,
    only_flow_run,
    state_names,
    states,
    task_runs,
)


@task(retries=3, retry_delay_seconds=[0, 0, 0], tags=["io"], timeout_seconds=30)
def extract(source: str) -> list[int]:
    return [len(source), 1]


@task
async def transform(rows: list[int], factor: int) -> list[int]:
    await asyncio.sleep(0)
    return [r * factor for r in rows]


@flow(name="etl-pipeline", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def etl(sources: list[str], factor: int = 2) -> int:
    logger = get_run_logger()
    futures = transform.map(extract.map(sources), unmapped(factor))
    total = sum(sum(f.result()) for f in futures)
    logger.info("total=%s", total)
    print("printed total", total)
    return total


def test_issue_example_flow_is_fully_recorded() -> None:
    assert etl(["a", "bb"]) == (1 + 1 + 2 + 1) * 2
    run = only_flow_run("etl-pipeline")
    assert run.state_type is StateType.COMPLETED
    assert run.parameters == {"sources": ["a", "bb"], "factor": 2}
    assert state_names(run.id) == ["Pending", "Running", "Completed"]
    tasks = task_runs(run.id)
    assert sorted(t.name for t in tasks) == [
        "extract-0[0]",
        "extract-0[1]",
        "transform-0[0]",
        "transform-0[1]",
    ]
    assert all(t.state_type is StateType.COMPLETED for t in tasks)
    by_name = {t.name: t for t in tasks}
    assert by_name["transform-0[1]"].upstream_ids == [by_name["extract-0[1]"].id]
    assert by_name["extract-0[0]"].tags == ["io"]
    text = log_text(run.id)
    assert "total=10" in text
    assert "printed total 10" in text
    # Routine task success lines are printed, not stored: the state history holds them.
    task_lines = [line.message for line in logs(run.id) if line.task_run_id is not None]
    assert "Finished in state Completed()" not in task_lines


def test_retries_are_recorded_with_each_attempt() -> None:
    calls = []

    @task(retries=3, retry_delay_seconds=0)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)}")
        return "ok"

    @flow
    def retrying() -> str:
        return flaky()

    assert retrying() == "ok"
    (run,) = task_runs(only_flow_run("retrying").id)
    assert run.run_count == 3
    # A direct call starts at once: no Pending state, and every attempt is kept.
    assert state_names(run.id) == [
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    awaiting = [s for s in states(run.id) if s.name == "AwaitingRetry"]
    assert awaiting[0].message == "ConnectionError: attempt 1"
    assert "ConnectionError" in (awaiting[0].details or {})["traceback"]


def test_retry_condition_can_stop_retries() -> None:
    calls = []

    def transient(task: object, run: object, state: State) -> bool:
        return not isinstance(state.result(raise_on_failure=False), KeyError)

    @task(retries=5, retry_condition_fn=transient)
    def picky() -> None:
        calls.append(1)
        raise KeyError("permanent")

    @flow
    def cond_flow() -> None:
        picky()

    state = cond_flow(return_state=True)
    assert state.type is StateType.FAILED
    assert len(calls) == 1
    with pytest.raises(KeyError):
        state.result()


def test_a_failing_task_fails_the_flow_with_the_original_exception() -> None:
    @task
    def boom() -> None:
        raise ValueError("bad row 7")

    @flow
    def failing() -> None:
        boom()

    with pytest.raises(ValueError, match="bad row 7"):
        failing()
    run = only_flow_run("failing")
    assert run.state_type is StateType.FAILED
    assert "ValueError: bad row 7" in (run.state_message or "")
    (task_run,) = task_runs(run.id)
    assert task_run.state_type is StateType.FAILED
    failed = states(task_run.id)[-1]
    assert (failed.details or {})["exception_type"] == "builtins.ValueError"


@pytest.mark.parametrize("submitted", [False, True])
def test_task_timeout_marks_the_run_timed_out(submitted: bool) -> None:
    @task(timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(5)

    @flow
    def timing() -> None:
        if submitted:
            slow.submit().wait()
        else:
            slow(return_state=True)

    started = time.monotonic()
    timing()
    assert time.monotonic() - started < 4
    names = {t.state_name for t in task_runs(only_flow_run("timing").id)}
    assert "TimedOut" in names


def test_async_flow_with_sync_and_async_tasks() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    async def add(x: int, y: int) -> int:
        await asyncio.sleep(0)
        return x + y

    @flow
    async def mixed(x: int) -> int:
        doubled = double(x)
        total = await add(doubled, 1)
        future = add.submit(total, 10)
        return future.result()

    assert asyncio.run(mixed(3)) == 17
    run = only_flow_run("mixed")
    assert run.state_type is StateType.COMPLETED
    assert len(task_runs(run.id)) == 3


def test_async_task_called_from_sync_flow_returns_its_value() -> None:
    @task
    async def fetch() -> str:
        return "data"

    @flow
    def sync_parent() -> str:
        return fetch()

    assert sync_parent() == "data"


def test_subflow_is_a_linked_child_run() -> None:
    @task
    def inc(x: int) -> int:
        return x + 1

    @flow
    def child(x: int) -> int:
        return inc(x)

    @flow
    def parent() -> int:
        return child(1) + child(10)

    assert parent() == 13
    runs = flow_runs()
    parent_run = next(r for r in runs if r.flow_name == "parent")
    children = [r for r in runs if r.flow_name == "child"]
    assert len(children) == 2
    assert {c.parent_flow_run_id for c in children} == {parent_run.id}
    placeholders = task_runs(parent_run.id)
    assert sorted(t.name for t in placeholders) == ["child-0", "child-1"]
    assert {c.parent_task_run_id for c in children} == {t.id for t in placeholders}
    assert all(t.state_type is StateType.COMPLETED for t in placeholders)


def test_allow_failure_and_upstream_failure() -> None:
    @task
    def fails() -> int:
        raise RuntimeError("nope")

    @task
    def downstream(value: object) -> str:
        return f"got {type(value).__name__}"

    @flow
    def deps() -> tuple[object, str, str]:
        bad = fails.submit()
        tolerant = downstream.submit(allow_failure(bad))
        strict = downstream.submit(bad)
        strict.wait()
        return tolerant.result(), strict.state.type.value, strict.state.name

    assert deps() == ("got RuntimeError", "PENDING", "NotReady")


def test_wait_for_orders_tasks_without_passing_data() -> None:
    order: list[str] = []

    @task
    def first() -> None:
        time.sleep(0.1)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def ordered() -> None:
        f = first.submit()
        second.submit(wait_for=[f]).wait()

    ordered()
    assert order == ["first", "second"]
    tasks = {t.task_name: t for t in task_runs(only_flow_run("ordered").id)}
    assert tasks["second"].upstream_ids == [tasks["first"].id]


def test_wait_and_as_completed() -> None:
    @task
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def napping() -> list[float]:
        futures = nap.map([0.3, 0.0, 0.1])
        done, not_done = wait(futures, timeout=5)
        assert not not_done and len(done) == 3
        return [f.result() for f in as_completed(futures)]

    assert sorted(napping()) == [0.0, 0.1, 0.3]


def test_task_outside_a_flow_runs_and_is_recorded() -> None:
    from sluice.backend.factory import get_backend

    @task
    def lonely(x: int) -> int:
        return x * 3

    assert lonely(4) == 12
    state = lonely(5, return_state=True)
    future = lonely.submit(6)
    assert future.result() == 18
    backend = get_backend()
    for run_id in (state.run_id, future.task_run_id):
        assert run_id is not None
        record = backend.read_task_run(run_id)
        assert record.flow_run_id is None
        assert record.state_type is StateType.COMPLETED
        assert record.result is not None


def test_tags_context_manager_tags_runs() -> None:
    @task
    def tagged() -> None:
        pass

    @flow
    def tag_flow() -> None:
        tagged()

    with tags("nightly", "team-a"):
        tag_flow()
    run = only_flow_run("tag_flow")
    assert run.tags == ["nightly", "team-a"]
    assert task_runs(run.id)[0].tags == ["nightly", "team-a"]


def test_invalid_parameters_raise_and_record_a_failed_run() -> None:
    @flow
    def typed(count: int, ratio: float = 1.0) -> float:
        return count * ratio

    assert typed("3") == 3.0  # coerced like pydantic
    with pytest.raises(ParameterValidationError) as info:
        typed("many", ratio="x")
    assert [field for field, _ in info.value.errors] == ["count", "ratio"]
    failed = [r for r in flow_runs("typed") if r.state_type is StateType.FAILED]
    assert len(failed) == 1
    assert "count" in (failed[0].state_message or "")


def test_run_names_from_templates() -> None:
    @task(task_run_name="fetch-{source}")
    def fetch(source: str) -> str:
        return source

    @flow(flow_run_name="daily-{day}")
    def named(day: str) -> None:
        fetch("ena")

    named("2026-11-22")
    run = only_flow_run("named")
    assert run.name == "daily-2026-11-22"
    assert task_runs(run.id)[0].name == "fetch-ena"


def test_hooks_receive_the_final_state() -> None:
    seen: list[tuple[str, str]] = []

    @task(on_failure=[lambda t, r, s: seen.append(("task", s.name))])
    def bad() -> None:
        raise OSError("disk")

    @flow(
        on_failure=[lambda f, r, s: seen.append(("flow", s.name))],
        on_completion=[lambda f, r, s: seen.append(("flow-ok", s.name))],
    )
    def hooked(fail: bool) -> None:
        if fail:
            bad()

    hooked(False)
    with pytest.raises(OSError):
        hooked(True)
    assert seen == [("flow-ok", "Completed"), ("task", "Failed"), ("flow", "Failed")]


def test_with_options_makes_a_configured_copy() -> None:
    @task
    def base_task() -> int:
        return 1

    renamed = base_task.with_options(name="renamed", retries=2)
    assert renamed.name == "renamed" and renamed.retries == 2
    assert base_task.name == "base_task"
    with pytest.raises(TypeError, match="unknown options"):
        base_task.with_options(retrys=2)


def test_flow_retries_rerun_the_flow() -> None:
    attempts: list[int] = []

    @flow(retries=1, retry_delay_seconds=0)
    def flaky_flow() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first attempt")
        return len(attempts)

    assert flaky_flow() == 2
    run = only_flow_run("flaky_flow")
    assert run.run_count == 2
    assert state_names(run.id)[-3:] == ["AwaitingRetry", "Retrying", "Completed"]


def test_flow_timeout() -> None:
    @flow(timeout_seconds=0.2)
    def sleepy() -> None:
        time.sleep(5)

    state = sleepy(return_state=True)
    assert state.name == "TimedOut"
    with pytest.raises(TimeoutError):
        state.result()


def test_keyboard_interrupt_crashes_the_run_and_propagates() -> None:
    @task
    def interrupted() -> None:
        raise KeyboardInterrupt

    @flow
    def stopped() -> None:
        interrupted()

    with pytest.raises(KeyboardInterrupt):
        stopped()
    run = only_flow_run("stopped")
    assert run.state_type is StateType.CRASHED
    assert task_runs(run.id)[0].state_type is StateType.CRASHED


def test_user_except_exception_cannot_swallow_cancellation() -> None:
    from sluice.errors import CancelRun

    @task
    def cancelled() -> str:
        try:
            raise CancelRun("operator asked")
        except Exception:
            return "swallowed"

    @flow
    def cancel_flow() -> str:
        return cancelled(return_state=True).type.value

    # The cancellation reaches the flow: the task and the flow run end Cancelled.
    state = cancel_flow(return_state=True)
    assert state.type is StateType.CANCELLED
    run = only_flow_run("cancel_flow")
    assert [t.state_type for t in task_runs(run.id)] == [StateType.CANCELLED]


def test_get_run_logger_outside_a_run_is_a_clear_error() -> None:
    with pytest.raises(MissingContextError, match="outside a flow or task run"):
        get_run_logger()


def test_map_argument_errors() -> None:
    @task
    def pair(a: int, b: int) -> int:
        return a + b

    @flow
    def bad_map(case: str) -> None:
        if case == "lengths":
            pair.map([1, 2], [1])
        else:
            pair.map(1, 2)

    with pytest.raises(ValueError, match="different lengths: a=2, b=1"):
        bad_map("lengths")
    with pytest.raises(ValueError, match="at least one iterable"):
        bad_map("none")


def test_task_state_lines_can_be_silenced_but_not_failures(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "quiet.py"
    script.write_text(
        textwrap.dedent(
            """
            from sluice import flow, task

            @task
            def fine() -> int:
                return 1

            @task
            def broken() -> None:
                raise ValueError("loud")

            @flow
            def quiet() -> None:
                fine()
                broken(return_state=True)

            quiet()
            """
        )
    )
    env = {**os.environ, "SLUICE_LOGGING_TASK_STATE_LINES": "false"}
    err = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    ).stderr
    assert "Task run 'fine-0'" not in err
    assert "Task run 'broken-0' - Finished in state Failed" in err


class _RunnerThatCannotStart(ThreadPoolTaskRunner):
    def start(self) -> None:
        raise RuntimeError("no cluster here")


def test_a_task_runner_that_cannot_start_leaves_the_run_crashed_not_pending() -> None:
    @flow(name="runner-fails", task_runner=_RunnerThatCannotStart())
    def runner_fails() -> int:
        return 1

    with pytest.raises(RuntimeError, match="no cluster here"):
        runner_fails()
    run = only_flow_run("runner-fails")
    assert run.state_type == "CRASHED"
    assert "failed to start" in (run.state_message or "")
    assert "no cluster here" in (run.state_message or "")
    assert state_names(run.id) == ["Pending", "Crashed"]
