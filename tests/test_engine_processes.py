"""Tasks in worker processes report states, logs and results like threads do."""

from __future__ import annotations

import os
import threading

import pytest

from sluice import flow, get_run_logger, task
from sluice.states import StateType
from sluice.task_runners import ProcessPoolTaskRunner
from tests.helpers import log_text, only_flow_run, state_names, task_runs

pytestmark = pytest.mark.integration


@task(retries=1, retry_delay_seconds=0)
def square_in_child(x: int) -> tuple[int, int]:
    get_run_logger().info("squaring %s in pid %s", x, os.getpid())
    return x * x, os.getpid()


@task
def returns_a_lock() -> object:
    return threading.Lock()


@task
def fails_in_child() -> None:
    raise ValueError("child failure")


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def squares(n: int) -> list[tuple[int, int]]:
    return [f.result() for f in square_in_child.map(range(n))]


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def unpicklable() -> None:
    returns_a_lock.submit().wait()
    fails_in_child.submit().wait()


def test_results_states_and_logs_come_back_from_worker_processes() -> None:
    results = squares(4)
    assert [r[0] for r in results] == [0, 1, 4, 9]
    assert all(pid != os.getpid() for _, pid in results)
    run = only_flow_run("squares")
    tasks = task_runs(run.id)
    assert len(tasks) == 4
    assert all(t.state_type is StateType.COMPLETED for t in tasks)
    assert state_names(tasks[0].id) == ["Pending", "Running", "Completed"]
    assert "squaring 3 in pid" in log_text(run.id)


def test_unserializable_result_names_the_task_and_type() -> None:
    unpicklable()
    run = only_flow_run("unpicklable")
    by_task = {t.task_name: t for t in task_runs(run.id)}
    lock_run = by_task["returns_a_lock"]
    assert lock_run.state_type is StateType.FAILED
    assert "returns_a_lock" in (lock_run.state_message or "")
    assert "lock" in (lock_run.state_message or "").lower()
    assert by_task["fails_in_child"].state_type is StateType.FAILED
    assert "child failure" in (by_task["fails_in_child"].state_message or "")
