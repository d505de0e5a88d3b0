"""Real ``sluice worker start`` processes executing deployment runs on the embedded store.

Each test starts worker subprocesses on the test's SQLite store and asserts on
what the store holds: states, messages, who ran what, how many at once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import DeploymentRun, run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.schemas import DeploymentRecord, WorkPoolRecord
from sluice.states import StateType
from tests.worker_helpers import (
    WorkerProcess,
    state_names,
    wait_final,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


@pytest.fixture
def backend() -> Iterator[Any]:
    yield get_backend()
    close_backends()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.kill()


def deploy(project: Path, flow: str, name: str = "dev", pool: str = "pool", **options: Any) -> Any:
    spec = DeploymentSpec(
        name=name,
        entrypoint=f"flows.py:{flow}",
        working_dir=str(project),
        options={"work_pool_name": pool, **options},
    )
    return spec.apply()


def start_worker(
    workers: list[WorkerProcess], tmp_path: Path, pool: str = "pool", *args: str
) -> WorkerProcess:
    w = WorkerProcess(pool, tmp_path / f"worker-{len(workers)}.log", *args)
    workers.append(w)
    return w


def test_a_deployment_run_executes_in_a_worker_subprocess(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    deploy(project, "hello", parameters={"n": 2})
    run = run_deployment("hello/dev", {"n": 41}, timeout=0)
    w = start_worker(workers, tmp_path, "pool", "--name", "w1")
    done = wait_final(backend, run.id, 60, w.log)
    assert done.state_type is StateType.COMPLETED, done
    assert done.id == run.id and done.worker_name == "w1"
    assert state_names(backend, run.id) == ["Scheduled", "Pending", "Running", "Completed"]
    assert run_deployment_result(done) == 42
    assert done.pid is not None and done.pid != w.popen.pid
    assert w.terminate() == 0
    (worker,) = backend.list_workers("pool")
    assert worker.name == "w1" and worker.status == "STOPPED"


def run_deployment_result(record: Any) -> Any:
    from sluice.deployments.run import DeploymentRun

    return DeploymentRun(record).state.result()


def test_a_missing_or_broken_entrypoint_fails_the_run_with_a_message(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    backend.create_work_pool(WorkPoolRecord(name="pool"))
    for name, entrypoint in [("missing", "nope.py:f"), ("broken", "broken.py:f"),
                             ("noattr", "flows.py:nothing")]:  # fmt: skip
        backend.upsert_deployment(
            DeploymentRecord(name=name, flow_name="x", entrypoint=entrypoint,
                             working_dir=str(project), work_pool_name="pool")
        )  # fmt: skip
    nowhere = str(tmp_path / "nowhere")
    gone = DeploymentRecord(name="gone", flow_name="x", entrypoint="flows.py:hello",
                            working_dir=nowhere, work_pool_name="pool")  # fmt: skip
    backend.upsert_deployment(gone)
    runs = {
        n: run_deployment(f"x/{n}", timeout=0).id for n in ("missing", "broken", "noattr", "gone")
    }
    w = start_worker(workers, tmp_path)
    ended = {n: wait_final(backend, i, 60, w.log) for n, i in runs.items()}
    for run in ended.values():
        assert run.state_type is StateType.FAILED, run
    assert "nope.py" in (ended["missing"].state_message or "")
    assert "not found" in (ended["missing"].state_message or "")
    assert "this_module_does_not_exist" in (ended["broken"].state_message or "")
    assert "nothing" in (ended["noattr"].state_message or "")
    assert "does not exist" in (ended["gone"].state_message or "")
    logs = backend.read_logs(runs["broken"])
    assert any("this_module_does_not_exist" in line.message for line in logs)


def test_cancelling_a_running_run_stops_its_process(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    deploy(project, "sleeper")
    run = run_deployment("sleeper/dev", {"seconds": 120}, timeout=0)
    w = start_worker(workers, tmp_path)
    running = wait_for(
        lambda: (r := backend.read_flow_run(run.id)).state_type is StateType.RUNNING and r,
        60, "the run to start",
    )  # fmt: skip
    assert running.pid is not None
    backend.cancel_flow_run(run.id)
    done = wait_final(backend, run.id, 30, w.log)
    assert done.state_type is StateType.CANCELLED, done
    names = state_names(backend, run.id)
    assert names[-2:] == ["Cancelling", "Cancelled"], names
    assert "Crashed" not in names
    wait_for(lambda: not _alive(running.pid), 10, "the flow process to be gone")
    assert w.popen.poll() is None  # the worker itself carries on


def test_a_killed_flow_process_is_marked_crashed(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    deploy(project, "sleeper")
    run = run_deployment("sleeper/dev", {"seconds": 120}, timeout=0)
    w = start_worker(workers, tmp_path)
    running = wait_for(
        lambda: (r := backend.read_flow_run(run.id)).state_type is StateType.RUNNING and r,
        60, "the run to start",
    )  # fmt: skip
    assert running.pid is not None
    os.kill(running.pid, signal.SIGKILL)
    done = wait_final(backend, run.id, 30, w.log)
    assert done.state_type is StateType.CRASHED, done
    assert "SIGKILL" in (done.state_message or ""), done.state_message


def test_worker_sigterm_lets_short_runs_finish(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    deploy(project, "sleeper")
    run = run_deployment("sleeper/dev", {"seconds": 1.5}, timeout=0)
    w = start_worker(workers, tmp_path, "pool", "--shutdown-grace", "30")
    wait_for(lambda: backend.read_flow_run(run.id).state_type is StateType.RUNNING, 60, "start")
    assert w.terminate() == 0
    assert backend.read_flow_run(run.id).state_type is StateType.COMPLETED


def test_worker_sigterm_hands_back_a_long_run_which_resumes_elsewhere(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    deploy(project, "gated")
    (project / "HOLD").touch()
    run = run_deployment("gated/dev", {"folder": str(project)}, timeout=0)
    first = start_worker(workers, tmp_path, "pool", "--shutdown-grace", "0.5", "--name", "first")
    wait_for(lambda: (project / "executions.log").exists(), 60, "the task to run")
    assert first.terminate() == 0
    handed = backend.read_flow_run(run.id)
    assert (handed.state_type, handed.state_name) == (StateType.SCHEDULED, "AwaitingResume"), handed
    (project / "HOLD").unlink()
    second = start_worker(workers, tmp_path, "pool", "--name", "second")
    done = wait_final(backend, run.id, 60, second.log)
    assert done.state_type is StateType.COMPLETED and done.worker_name == "second"
    # The task completed before the hand-back was replayed, not run again.
    assert (project / "executions.log").read_text().splitlines() == ["before-hold"]


def test_the_pool_concurrency_limit_holds_across_workers(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    backend.create_work_pool(WorkPoolRecord(name="pool", concurrency_limit=2))
    deploy(project, "spans")
    ids = [run_deployment("spans/dev", {"folder": "", "seconds": 1.0}, timeout=0).id
           for _ in range(6)]  # fmt: skip
    for _ in range(2):
        start_worker(workers, tmp_path, "pool", "--limit-concurrency", "4")
    done = [wait_final(backend, i, 90, workers[0].log) for i in ids]
    assert all(r.state_type is StateType.COMPLETED for r in done)
    spans = [(r.start_time, r.end_time) for r in done]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most <= 2, spans


def test_an_embedded_worker_creates_and_runs_scheduled_runs(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    dep = deploy(project, "hello", interval=1)
    w = start_worker(workers, tmp_path)

    def completed() -> list[Any]:
        runs = backend.list_deployment_runs(dep.id, state_types=[StateType.COMPLETED], limit=0)
        return runs if len(runs) >= 2 else []

    runs = wait_for(completed, 60, "two scheduled runs to complete")
    assert all(r.idempotency_key and r.idempotency_key.startswith("scheduled:") for r in runs)
    assert w.terminate() == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers: look at its state.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_worker_options_refuse_a_zero_limit() -> None:
    from sluice.workers.worker import WorkerOptions

    with pytest.raises(ValueError, match="at least 1"):
        WorkerOptions(pool="p", limit=0)


def test_cli_run_watch_and_backfill_follow_runs_a_worker_executes(
    project: Path, backend: Any, workers: list[WorkerProcess], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from sluice.cli.main import app

    monkeypatch.chdir(project)
    runner = CliRunner()
    deployed = runner.invoke(app, ["deploy", "flows.py:hello", "--name", "daily", "--pool",
                                   "pool", "--cron", "0 6 * * *", "--paused"])  # fmt: skip
    assert deployed.exit_code == 0, deployed.output
    # Paused, no run is claimed; resumed, the worker takes them.
    assert runner.invoke(app, ["deployment", "resume", "hello/daily"]).exit_code == 0
    start_worker(workers, tmp_path)
    watched = runner.invoke(app, ["deployment", "run", "hello/daily", "--param", "n=1", "--watch"])
    assert watched.exit_code == 0, watched.output
    # --watch prints each state it sees until a final one; a fast worker may
    # move the run on between two polls, so only the last line is certain.
    lines = watched.output.splitlines()
    assert lines[0].startswith("Created flow run"), watched.output
    assert len(lines) >= 2 and lines[-1].endswith("Completed"), watched.output
    filled = runner.invoke(app, ["deployment", "backfill", "hello/daily", "--start", "2024-01-01",
                                 "--end", "2024-01-03"])  # fmt: skip
    assert filled.exit_code == 0, filled.output
    assert "3 runs finished, 0 not completed" in filled.output
    runs = backend.list_deployment_runs("hello/daily", scheduled_before=_utc(2025), limit=0)
    assert [r.scheduled_start_time.day for r in runs] == [1, 2, 3]
    assert all(r.state_type is StateType.COMPLETED for r in runs)


def _utc(year: int) -> Any:
    import datetime as dt

    return dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)


WHERE_FLOW = """
import os
from pathlib import Path

from sluice import flow


@flow
def where() -> list:
    return [Path(__file__).parent.name, os.getcwd(), os.environ.get("STAGE"),
            os.environ.get("WORKER_ONLY")]
"""


def test_job_variables_env_and_working_dir_apply_to_the_runs_process(
    backend: Any, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    for folder in ("deployed", "elsewhere"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "where.py").write_text(WHERE_FLOW)
    spec = DeploymentSpec(
        name="dev",
        entrypoint="where.py:where",
        working_dir=str(tmp_path / "deployed"),
        options={"work_pool_name": "pool"},
    )
    spec.apply()
    plain = run_deployment("where/dev", timeout=0)
    varied = run_deployment(
        "where/dev",
        timeout=0,
        job_variables={
            "env": {"STAGE": "qa", "WORKER_ONLY": None},
            "working_dir": str(tmp_path / "elsewhere"),
            "image": "ignored:1",
        },
    )
    w = WorkerProcess("pool", tmp_path / "worker.log", env={"WORKER_ONLY": "from-worker"})
    workers.append(w)
    done = {r.id: wait_final(backend, r.id, 60, w.log) for r in (plain, varied)}
    results = {i: DeploymentRun(r).state.result() for i, r in done.items()}
    assert results[plain.id] == [
        "deployed", str(tmp_path / "deployed"), None, "from-worker"
    ]  # fmt: skip
    assert results[varied.id] == ["elsewhere", str(tmp_path / "elsewhere"), "qa", None]
    assert "job variables image do not apply to process pools" in w.log()
