"""DaskTaskRunner on a real LocalCluster: the engine behaves as it does with threads.

One cluster (two worker processes) serves the module; each test's flow
connects to it by address, as a flow connects to a remote scheduler.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice import flow, get_run_logger, task
from sluice.cache_policies import INPUTS
from sluice.flows import Flow
from sluice.results.owners import flow_result_owner, owner_of_task_run
from sluice.results.store import load_result
from sluice.states import StateType
from sluice.utilities.annotations import allow_failure
from tests.helpers import log_text, only_flow_run, state_names, task_runs

pytestmark = pytest.mark.integration

distributed = pytest.importorskip("distributed")
from sluice.task_runners import DaskTaskRunner  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, dashboard_address=":0"
    ) as local_cluster:
        yield local_cluster


def on(cluster: Any, fl: Flow[..., Any]) -> Flow[..., Any]:
    """The flow, running its tasks on the module's cluster."""
    return fl.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))


def bump(path: str) -> int:
    """Count a call in a file (tasks run in other processes); the count so far."""
    with open(path, "a") as handle:
        handle.write("x")
    return len(Path(path).read_text())


def calls(path: Path) -> int:
    return len(path.read_text()) if path.exists() else 0


# -- tasks and flows ------------------------------------------------------------------
@task
def square(x: int) -> tuple[int, int]:
    get_run_logger().info("squaring %s in pid %s", x, os.getpid())
    return x * x, os.getpid()


@task
def add_all(pairs: list[tuple[int, int]]) -> int:
    return sum(p[0] for p in pairs)


@flow
def squares(n: int) -> tuple[list[tuple[int, int]], int]:
    futures = square.map(range(n))
    total = add_all.submit(futures)
    return futures.result(), total.result()


class Tracked:
    """A large value that notes every process that unpickles it."""

    def __init__(self, size: int, log: str) -> None:
        self.payload = b"x" * size
        self.log = log

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        with open(self.log, "a") as handle:
            handle.write(f"{os.getpid()}\n")


@task(persist_result=False)
def make_big(log: str) -> Tracked:
    return Tracked(20_000_000, log)


@task
def measure(value: Tracked) -> tuple[int, int]:
    return len(value.payload), os.getpid()


@flow
def big_pipeline(log: str) -> tuple[int, int]:
    big = make_big.submit(log)
    return measure.submit(big).result()


@task(retries=2, retry_delay_seconds=0)
def flaky(counter: str) -> str:
    if bump(counter) < 2:
        raise RuntimeError("first attempt fails")
    return "ok"


@task(timeout_seconds=0.5)
def sleeps(seconds: float) -> None:
    time.sleep(seconds)


@flow
def retries_and_timeouts(counter: str) -> None:
    flaky.submit(counter).wait()
    sleeps.submit(5).wait()


@task(cache_policy=INPUTS, persist_result=True)
def cached_double(x: int, counter: str) -> int:
    bump(counter)
    return 2 * x


@task
def seven() -> int:
    return 7


@flow
def cache_flow(counter: str) -> list[int]:
    direct = cached_double.submit(5, counter)
    via_upstream = cached_double.submit(seven.submit(), counter)
    return [direct.result(), via_upstream.result()]


@task
def broken() -> int:
    raise ValueError("broken task")


@task
def after(value: Any) -> str:
    return f"after {type(value).__name__}"


@flow
def upstream_failures() -> tuple[str, str, str]:
    bad = broken.submit()
    strict = after.submit(bad)
    tolerant = after.submit(allow_failure(bad))
    ordered = after.submit(1, wait_for=[bad])
    return (
        strict.state.name if strict.wait() is None else "",
        tolerant.result(),
        ordered.state.name if ordered.wait() is None else "",
    )


@task
def skip_or_fail(x: int) -> Any:
    from sluice.states import Completed, Failed

    if x < 0:
        return Failed(message=f"{x} is negative")
    return Completed(name="SKIPPED", message=f"{x} needs nothing", data=x)


@flow
def returned_states() -> list[Any]:
    futures = skip_or_fail.map([1, -1])
    futures.wait()
    return [(f.state.type.value, f.state.name, f.state.message) for f in futures] + [
        futures[0].result()
    ]


@flow
def returns_futures() -> list[Any]:
    return [skip_or_fail.submit(i) for i in (2, 3)]


@task
def step(i: int, counter_dir: str) -> int:
    bump(os.path.join(counter_dir, f"step-{i}"))
    if i == 2 and not os.path.exists(os.path.join(counter_dir, "fixed")):
        raise RuntimeError("step 2 broke")
    return i * 10


@flow
def resumable(n: int, counter_dir: str) -> int:
    futures = [step.submit(i, counter_dir) for i in range(n)]
    return sum(f.result() for f in futures)


# -- tests ------------------------------------------------------------------------------
def test_results_states_and_logs_come_back_from_dask_workers(cluster: Any) -> None:
    pairs, total = on(cluster, squares)(4)
    assert [p[0] for p in pairs] == [0, 1, 4, 9]
    assert total == 14
    assert all(pid != os.getpid() for _, pid in pairs)
    run = only_flow_run("squares")
    runs = task_runs(run.id)
    assert len(runs) == 5
    assert all(t.state_type is StateType.COMPLETED for t in runs)
    assert state_names(runs[0].id) == ["Pending", "Running", "Completed"]
    assert "squaring 3 in pid" in log_text(run.id)
    by_name = {t.name: t for t in runs}
    # Persisted on the worker, readable by anyone with the store.
    add_all = by_name["add_all-0"]
    assert load_result(add_all.result or "", owner_of_task_run(add_all)) == 14


def test_a_large_upstream_value_moves_between_workers_not_through_the_flow(
    cluster: Any, tmp_path: Path
) -> None:
    log = tmp_path / "unpickled-in"
    size, measured_in = on(cluster, big_pipeline)(str(log))
    assert size == 20_000_000
    assert measured_in != os.getpid()
    unpickled_in = set(log.read_text().split()) if log.exists() else set()
    assert str(os.getpid()) not in unpickled_in


def test_retries_and_timeouts_behave_as_with_threads(cluster: Any, tmp_path: Path) -> None:
    counter = tmp_path / "flaky"
    on(cluster, retries_and_timeouts)(str(counter))
    assert calls(counter) == 2
    run = only_flow_run("retries_and_timeouts")
    by_name = {t.task_name: t for t in task_runs(run.id)}
    flaky_run = by_name["flaky"]
    assert flaky_run.state_type is StateType.COMPLETED and flaky_run.run_count == 2
    assert state_names(flaky_run.id) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    timed = by_name["sleeps"]
    assert timed.state_name == "TimedOut"
    assert "timeout of 0.5 s" in (timed.state_message or "")


def test_cache_hits_skip_the_worker_even_with_upstream_inputs(cluster: Any, tmp_path: Path) -> None:
    counter = tmp_path / "cached"
    runner_flow = on(cluster, cache_flow)
    assert runner_flow(str(counter)) == [10, 14]
    assert calls(counter) == 2
    assert runner_flow(str(counter)) == [10, 14]
    assert calls(counter) == 2
    second = sorted(sluice_runs("cache_flow"), key=lambda r: r.created)[-1]
    names = [t.state_name for t in task_runs(second.id) if t.task_name == "cached_double"]
    assert names == ["Cached", "Cached"]


def sluice_runs(name: str) -> list[Any]:
    from tests.helpers import flow_runs

    return flow_runs(name)


def test_upstream_failure_and_allow_failure(cluster: Any) -> None:
    state = on(cluster, upstream_failures)(return_state=True)
    run = only_flow_run("upstream_failures")
    by_name = {t.name: t for t in task_runs(run.id)}
    assert by_name["broken-0"].state_type is StateType.FAILED
    assert "broken task" in (by_name["broken-0"].state_message or "")
    assert (by_name["after-0"].state_type, by_name["after-0"].state_name) == (
        StateType.PENDING,
        "NotReady",
    )
    assert by_name["after-1"].state_type is StateType.COMPLETED
    assert state.result() == ("NotReady", "after ValueError", "NotReady")


def test_states_returned_by_tasks_come_back_from_dask(cluster: Any) -> None:
    assert on(cluster, returned_states)() == [
        ("COMPLETED", "SKIPPED", "1 needs nothing"),
        ("FAILED", "Failed", "-1 is negative"),
        1,
    ]
    run = only_flow_run("returned_states")
    names = sorted((t.state_name, t.state_message) for t in task_runs(run.id))
    assert names == [("Failed", "-1 is negative"), ("SKIPPED", "1 needs nothing")]
    # Returned futures are stored as their states, without the cluster's handles.
    state = on(cluster, returns_futures)(return_state=True)
    assert (state.type, state.message) == (StateType.COMPLETED, "All states completed.")
    run = only_flow_run("returns_futures")
    stored = load_result(run.result or "", flow_result_owner(run.id))
    assert [(s.name, s.result()) for s in stored] == [("SKIPPED", 2), ("SKIPPED", 3)]


def test_resume_replays_completed_tasks_without_sending_them_to_dask(
    cluster: Any, tmp_path: Path
) -> None:
    counters = tmp_path / "counters"
    counters.mkdir()
    fl = on(cluster, resumable)
    state = fl(4, str(counters), return_state=True)
    assert state.is_failed()
    (counters / "fixed").touch()
    resumed = sluice.resume_flow_run(state.run_id or "", flow=fl)
    assert resumed.result() == 60
    assert [calls(counters / f"step-{i}") for i in range(4)] == [1, 1, 2, 1]
    names = {t.name: t.state_name for t in task_runs(state.run_id or "")}
    assert names["step-0"] == names["step-1"] == names["step-3"] == "Replayed"
    assert names["step-2"] == "Completed"


def test_flow_retries_replay_tasks_completed_on_dask(cluster: Any, tmp_path: Path) -> None:
    counters = tmp_path / "counters"
    counters.mkdir()

    @flow(retries=1, retry_delay_seconds=0)
    def retried(counter_dir: str) -> int:
        first = step.submit(0, counter_dir)
        second = step.submit(1, counter_dir)
        if not os.path.exists(os.path.join(counter_dir, "flow-ran")):
            Path(counter_dir, "flow-ran").touch()
            raise RuntimeError("the flow fails once after its tasks")
        return first.result() + second.result()

    assert on(cluster, retried)(str(counters)) == 10
    assert calls(counters / "step-0") == calls(counters / "step-1") == 1


def test_a_temporary_cluster_starts_and_closes_with_the_flow() -> None:
    seen: list[Any] = []

    @flow(
        task_runner=DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 1,
                "threads_per_worker": 1,
                "processes": False,
                "dashboard_address": ":0",
            }
        )
    )
    def temporary() -> int:
        runner = sluice.get_run_context().task_runner  # type: ignore[union-attr]
        seen.append(runner._session.cluster)
        return square.submit(3).result()[0]

    assert temporary() == 9
    assert seen[0].status.name == "closed"


def test_cluster_class_path_with_adaptive_scaling() -> None:
    seen: list[Any] = []

    @flow(
        task_runner=DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": 0,
                "threads_per_worker": 1,
                "processes": False,
                "dashboard_address": ":0",
            },
            adapt_kwargs={"minimum": 1, "maximum": 2},
        )
    )
    def adaptive() -> list[int]:
        runner = sluice.get_run_context().task_runner  # type: ignore[union-attr]
        seen.append(runner._session.cluster)
        return [p[0] for p in square.map(range(3)).result()]

    assert adaptive() == [0, 1, 4]
    assert seen[0]._adaptive is not None


def test_an_existing_scheduler_stays_up_after_the_flow(cluster: Any) -> None:
    on(cluster, squares)(2)
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not both"):
        DaskTaskRunner(address="tcp://127.0.0.1:1", cluster_kwargs={"n_workers": 1})
    with pytest.raises(ValueError, match=r"'module\.Class' path"):
        DaskTaskRunner(cluster_class="LocalCluster")

    @flow(task_runner=DaskTaskRunner(cluster_class="no_such_module_xyz.Cluster"))
    def misconfigured() -> None:
        pass

    with pytest.raises(sluice.errors.ConfigurationError, match="no_such_module_xyz"):
        misconfigured()


def test_client_mode_records_reach_the_server(
    cluster: Any, api_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.backend.factory import close_backends
    from sluice.backend.local import LocalBackend
    from sluice.schemas import FlowRunFilter
    from sluice.settings import Settings

    monkeypatch.setenv("SLUICE_API_URL", api_server.url)
    monkeypatch.setenv("SLUICE_STORE_FLUSH_INTERVAL", "0.05")
    try:
        _pairs, total = on(cluster, squares.with_options(name="squares-over-api"))(3)
    finally:
        close_backends()
    assert total == 5
    store = LocalBackend(Settings(home=api_server.home))
    try:
        runs = store.list_flow_runs(FlowRunFilter(flow_name="squares-over-api"))
        assert len(runs) == 1 and runs[0].state_type is StateType.COMPLETED
        tasks = store.read_task_runs(runs[0].id)
        assert len(tasks) == 4
        assert all(t.state_type is StateType.COMPLETED for t in tasks)
        lines = "\n".join(line.message for line in store.read_logs(runs[0].id))
        assert "squaring 2 in pid" in lines
    finally:
        store.close()


@task
async def async_double(x: int) -> int:
    return 2 * x


@task(log_prints=True)
def prints(word: str) -> str:
    print(f"printed {word} on a worker")
    return word


@task
def takes(value: Any) -> str:
    return type(value).__name__


@flow
def mixed_features(marker: str) -> tuple[int, str, str]:
    doubled = async_double.submit(21)
    printed = prints.submit("hello", wait_for=[doubled])
    unpicklable = takes.submit(threading.Lock())
    return (
        doubled.result(),
        printed.result(),
        unpicklable.state.name if unpicklable.wait() is None else "",
    )


def test_async_tasks_log_prints_wait_for_and_unpicklable_arguments(cluster: Any) -> None:
    doubled, printed, unpicklable = on(cluster, mixed_features)("x")
    assert (doubled, printed, unpicklable) == (42, "hello", "Failed")
    run = only_flow_run("mixed_features")
    assert "printed hello on a worker" in log_text(run.id)
    by_name = {t.task_name: t for t in task_runs(run.id)}
    assert by_name["prints"].upstream_ids == [by_name["async_double"].id]
    message = by_name["takes"].state_message or ""
    assert "takes" in message and "lock" in message.lower()


@task
def describe_arg(value: Any) -> str:
    if isinstance(value, list):
        return "list of " + ",".join(type(v).__name__ for v in value)
    return f"{type(value).__name__} {value}"


@flow
def wrapped_arguments() -> list[str]:
    from sluice.utilities.annotations import opaque, quote

    first = square.submit(3)
    return [
        describe_arg.submit(opaque(first)).result(),  # resolved on the cluster too
        describe_arg.submit(quote([1, "x"])).result(),
    ]


def test_quote_and_opaque_arguments_reach_dask_tasks_unwrapped(cluster: Any) -> None:
    described = on(cluster, wrapped_arguments)()
    assert described[0].startswith("tuple (9, ")
    assert described[1] == "list of int,str"
