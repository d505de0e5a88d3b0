"""A Dask worker SIGKILLed mid-task: the task is rescheduled or Crashed, the flow
ends, and tasks whose completion was recorded are never computed again."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import flow, task
from sluice.states import StateType
from tests.helpers import only_flow_run, state_names, task_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

distributed = pytest.importorskip("distributed")
from sluice.task_runners import DaskTaskRunner  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=":0"
    ) as local_cluster:
        yield local_cluster


def count_call(folder: str, name: str) -> None:
    with open(os.path.join(folder, name), "a") as handle:
        handle.write("x")


def calls(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text()) if path.exists() else 0


@task
def produce(i: int, folder: str) -> tuple[int, int]:
    count_call(folder, f"produce-{i}")
    return i, os.getpid()


@task
def hang(first: tuple[int, int], folder: str) -> int:
    """Slow on its first run: the test kills the worker running it."""
    count_call(folder, "hang")
    Path(folder, "hang.pid").write_text(str(os.getpid()))
    if not Path(folder, "killed").exists():
        time.sleep(60)
    return first[0]


@task
def combine(pairs: list[tuple[int, int]]) -> int:
    return sum(p[0] for p in pairs)


@flow
def killed_mid_task(folder: str, n: int) -> tuple[int, int, list[int]]:
    produced = produce.map(range(n), folder)
    produced.wait()
    survivor = hang.submit(produced[0], folder).result()
    total = combine.submit(produced).result()
    return survivor, total, [p[1] for p in produced.result()]


def kill_when_running(folder: Path, record: list[int]) -> threading.Thread:
    """SIGKILL the worker process running ``hang`` once it has run for a second."""

    def killer() -> None:
        pid_file = folder / "hang.pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # let the flow's store catch up with the finished tasks
        pid = int(pid_file.read_text())
        (folder / "killed").touch()
        record.append(pid)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread


def test_killed_worker_reschedules_the_task_and_recomputes_nothing(
    cluster: Any, tmp_path: Path
) -> None:
    killed: list[int] = []
    killer = kill_when_running(tmp_path, killed)
    fl = killed_mid_task.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    n = 6
    survivor, total, producer_pids = fl(str(tmp_path), n)
    killer.join()
    assert survivor == 0 and total == sum(range(n))
    # Dask lost the killed worker's values and asked for them again: the
    # stored results answered, the function ran once per task.
    assert [calls(tmp_path, f"produce-{i}") for i in range(n)] == [1] * n
    # (The killed worker did hold produced values: hang ran next to its input.)
    assert killed[0] in producer_pids
    assert calls(tmp_path, "hang") == 2
    run = only_flow_run("killed_mid_task")
    assert run.state_type is StateType.COMPLETED
    by_name = {t.name: t for t in task_runs(run.id)}
    for i in range(n):
        produced = by_name[f"produce-0[{i}]"]
        assert state_names(produced.id) == ["Pending", "Running", "Completed"]
    assert by_name["hang-0"].state_type is StateType.COMPLETED


@task
def hang_once(folder: str) -> None:
    count_call(folder, "hang")
    Path(folder, "hang.pid").write_text(str(os.getpid()))
    time.sleep(60)


@task
def quick() -> str:
    return "quick"


@flow
def crashes(folder: str) -> Any:
    quick.submit().wait()
    return hang_once.submit(folder)


def test_killed_worker_without_reschedules_marks_the_task_crashed(
    cluster: Any, tmp_path: Path
) -> None:
    scheduler = cluster.scheduler
    allowed = scheduler.allowed_failures
    scheduler.allowed_failures = 0
    try:
        killed: list[int] = []
        killer = kill_when_running(tmp_path, killed)
        fl = crashes.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        state = fl(str(tmp_path), return_state=True)
        killer.join()
    finally:
        scheduler.allowed_failures = allowed
    assert state.is_failed()
    run = only_flow_run("crashes")
    by_name = {t.task_name: t for t in task_runs(run.id)}
    crashed = by_name["hang_once"]
    assert crashed.state_type is StateType.CRASHED
    assert "KilledWorker" in (crashed.state_message or "")
    assert by_name["quick"].state_type is StateType.COMPLETED
    assert calls(tmp_path, "hang") == 1
