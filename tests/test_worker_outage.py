"""Worker runs through a database outage: a real worker, a real PostgreSQL stopped and started.

A private PostgreSQL server (:mod:`tests.pg_instance`) holds the store; a
``sluice worker start`` subprocess executes deployment runs whose tasks write
a counter file; the server is stopped the way a crash stops it
(``-m immediate``) while runs are in flight, and started again. Afterwards
every run must be Completed (never Crashed on the way), no task may have run
twice, and every task run and state of every run must be in the store. The
worker itself lives through the outage (its claims, heartbeats and settling
fail meanwhile), and a run it claimed before the outage whose process could
not open the store goes back to the queue and runs once afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.local import LocalBackend
from sluice.deployments import run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.settings import Settings, StoreSettings
from sluice.states import TERMINAL_TYPES, StateType
from tests import pg_instance
from tests.server_process import ServerProcess, free_port
from tests.worker_helpers import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

#: deployment runs besides the gated one
RUNS = 20
#: task calls per run
STEPS = 3
#: the outage lasts at least this long (seconds)
OUTAGE = 10.0

FLOWS = """
import os
import time

from sluice import flow, task, runtime


def _mark(folder: str, what: str) -> None:
    with open(os.path.join(folder, "counter.log"), "a") as fh:
        fh.write(what + "\\n")


@task
def step(folder: str, i: int, pause: float) -> int:
    run = str(runtime.flow_run.id)
    _mark(folder, f"start {run} {i}")
    time.sleep(pause)
    _mark(folder, f"end {run} {i}")
    return i


@flow
def counted(folder: str, steps: int = 3, pause: float = 0.3) -> int:
    return sum(step(folder, i, pause) for i in range(steps))
"""

#: imported by a run's interpreter before anything else (its PYTHONPATH points
#: here): says it is there, then waits while the gate file exists
GATE = """
import os
import time

_gate = os.environ.get("START_GATE")
if _gate:
    with open(_gate + ".waiting", "w") as fh:
        fh.write(str(os.getpid()))
    while os.path.exists(_gate):
        time.sleep(0.02)
"""


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[pg_instance.PostgresInstance]:
    reason = pg_instance.unavailable_reason()
    if reason is not None:
        pytest.skip(f"no private PostgreSQL server: {reason}")
    with pg_instance.postgres_instance() as instance:
        yield instance


@pytest.fixture
def postgres(postgres_server: pg_instance.PostgresInstance) -> Iterator[str]:
    """The URL of a new database on the private server (running)."""
    from sqlalchemy import create_engine

    if not postgres_server.running():
        postgres_server.start()
    name = f"outage_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"


class Counts:
    """The counter file the runs' tasks write: which (run, step) started and ended."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def marks(self, what: str) -> Counter[tuple[str, int]]:
        found: Counter[tuple[str, int]] = Counter()
        if not self.path.exists():
            return found
        for line in self.path.read_text().splitlines():
            kind, run, i = line.split()
            if kind == what:
                found[(run, int(i))] += 1
        return found

    def finished_runs(self) -> set[str]:
        """Runs whose last step ended."""
        return {run for run, i in self.marks("end") if i == STEPS - 1}


class Scene:
    """The project, the start gate and the counter file of one outage test."""

    def __init__(self, tmp_path: Path) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir()
        (self.project / "flows.py").write_text(FLOWS)
        self.gate_dir = tmp_path / "gate"
        self.gate_dir.mkdir()
        (self.gate_dir / "sitecustomize.py").write_text(GATE)
        self.gate = tmp_path / "start-gate"
        self.gate.touch()
        self.counts = Counts(self.project / "counter.log")
        self.home = tmp_path / "sluice-home"

    def create_runs(self, backend: LocalBackend) -> list[str]:
        """The deployment and its runs; the gated one first (the oldest: claimed first)."""
        DeploymentSpec(
            name="dev", entrypoint="flows.py:counted", working_dir=str(self.project),
            options={"work_pool_name": "pool"},
        ).apply(backend)  # fmt: skip
        params = {"folder": str(self.project), "steps": STEPS, "pause": 0.3}
        path = os.pathsep.join(filter(None, [str(self.gate_dir), os.environ.get("PYTHONPATH")]))
        gate_env = {"PYTHONPATH": path, "START_GATE": str(self.gate)}
        gated = run_deployment(
            "counted/dev", params, timeout=0, backend=backend, job_variables={"env": gate_env}
        )
        others = [
            run_deployment("counted/dev", params, timeout=0, backend=backend) for _ in range(RUNS)
        ]
        return [gated.id] + [r.id for r in others]

    def spool_files(self) -> list[Path]:
        return sorted((self.home / "spool").glob("*/*.jsonl"))


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _read_runs(backend: LocalBackend, ids: list[str]) -> dict[str, Any]:
    return {i: backend.read_flow_run(i) for i in ids}


# -- the outage -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["waited-out", "spooled", "client"])
def test_worker_runs_in_flight_during_an_outage_all_complete_once(
    tmp_path: Path,
    postgres_server: pg_instance.PostgresInstance,
    postgres: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    """``waited-out``: the outage is shorter than ``store.retry_timeout`` (120 s by
    default), so processes wait for the database; ``spooled``: it is longer (3 s), so
    runs ending meanwhile keep their last records in spool files and exit; ``client``:
    the worker and its runs talk to a Sluice server whose database goes away."""
    monkeypatch.setenv("SLUICE_DATABASE_URL", postgres)
    monkeypatch.setenv("SLUICE_LOGGING_TASK_STATE_LINES", "false")
    spooled = mode == "spooled"
    if spooled:
        monkeypatch.setenv("SLUICE_STORE_RETRY_TIMEOUT", "3")
    scene = Scene(tmp_path)
    backend = LocalBackend(Settings(home=scene.home, database_url=postgres))
    server = None
    try:
        ids = scene.create_runs(backend)
        worker_env = {}
        if mode == "client":
            server = ServerProcess(tmp_path / "server-home", env={"SLUICE_DATABASE_URL": postgres})
            server.start()
            worker_env["SLUICE_API_URL"] = server.url
        worker = WorkerProcess(
            "pool", tmp_path / "worker.log", "--name", "w1", "--limit-concurrency", "4",
            env=worker_env,
        )  # fmt: skip
        try:
            _outage_while_runs_are_in_flight(postgres_server, backend, worker, scene, ids, spooled)
            done = _all_final(backend, ids, worker)
            assert worker.popen.poll() is None, f"the worker died:\n{worker.log()}"
            assert worker.terminate() == 0, worker.log()
        finally:
            worker.kill()
        log = worker.log_path.read_text(errors="replace")
        not_completed = {
            i: (r.state_name, r.state_message)
            for i, r in done.items()
            if r.state_type is not StateType.COMPLETED
        }
        assert not not_completed, f"{not_completed}\n{worker.log()}"
        # No task ran twice; every task of every run ran.
        starts = scene.counts.marks("start")
        assert set(starts) == {(run, i) for run in ids for i in range(STEPS)}
        assert [k for k, n in starts.items() if n > 1] == []
        for run_id in ids:
            _assert_fully_recorded(backend, run_id)
        _assert_gated_run_handed_back(backend, ids[0])
        # The worker's own account: every run completed, some handed back first.
        report = log.strip().splitlines()[-1]
        assert report.startswith("Worker 'w1' stopped; runs: 21 completed"), report
        assert "crashed" not in report and "pending" not in report, report
        if spooled:
            # Runs ended in the outage, their records kept aside, and their
            # processes said so (exit status 5); the worker wrote the records back.
            assert "records are kept in" in log
            assert "ended: completed (exit code 5)" in log
        assert scene.spool_files() == []
    finally:
        backend.close()
        if server is not None:
            server.stop()


def _outage_while_runs_are_in_flight(
    postgres: pg_instance.PostgresInstance,
    backend: LocalBackend,
    worker: WorkerProcess,
    scene: Scene,
    ids: list[str],
    spooled: bool,
) -> None:
    """Stop the database while runs are in flight; keep it down until those finished their
    work (and, ``spooled``, their processes exited) and the gated run's process gave up;
    then start it again."""
    counts = scene.counts
    waiting = scene.gate.with_name(scene.gate.name + ".waiting")
    wait_for(waiting.exists, 60, "the gated run's process to start")

    def in_flight() -> dict[str, int] | None:
        """Once three runs completed: the runs Running that started work and did not
        finish it, by their process id (at least two)."""
        runs = _read_runs(backend, ids)
        if sum(r.state_type is StateType.COMPLETED for r in runs.values()) < 3:
            return None
        started = {run for run, _ in counts.marks("start")}
        finished = counts.finished_runs()
        flying = {
            i: r.pid for i, r in runs.items()
            if r.state_type is StateType.RUNNING and i in started and i not in finished
        }  # fmt: skip
        return flying if len(flying) >= 2 else None

    flying = wait_for(in_flight, 90, "runs completed and others in flight", poll=0.02)
    stopped_at = time.monotonic()
    postgres.stop("immediate")
    scene.gate.unlink()  # the gated run's process goes on: to a store that is away
    gated_pid = int(waiting.read_text())
    wait_for(lambda: not _alive(gated_pid), 60, "the gated run's process to give up")
    wait_for(lambda: set(flying) <= counts.finished_runs(), 60, "the runs in flight to end work")
    if spooled:
        wait_for(
            lambda: not any(_alive(pid) for pid in flying.values()), 60,
            "the processes of the runs in flight to keep their records and exit",
        )  # fmt: skip
    remaining = OUTAGE - (time.monotonic() - stopped_at)
    if remaining > 0:
        time.sleep(remaining)  # the outage's length, not a synchronisation
    if not spooled:
        gone = [pid for pid in flying.values() if not _alive(pid)]
        assert gone == [], "a run's process did not wait for the database"
    assert worker.popen.poll() is None, f"the worker died in the outage:\n{worker.log()}"
    postgres.start()


def _all_final(backend: LocalBackend, ids: list[str], worker: WorkerProcess) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        runs = _read_runs(backend, ids)
        return runs if all(r.state_type in TERMINAL_TYPES for r in runs.values()) else None

    try:
        return wait_for(final, 90, "every run to end", poll=0.2)
    except AssertionError:
        runs = _read_runs(backend, ids)
        left = {i: (r.state_name, r.state_message) for i, r in runs.items()}
        raise AssertionError(f"runs did not all end: {left}\n{worker.log()}") from None


def _assert_fully_recorded(backend: LocalBackend, run_id: str) -> None:
    """The run's states (never Crashed), its task runs and their states are in the store."""
    names = [s.name for s in backend.read_states(run_id)]
    assert "Crashed" not in names, (run_id, names)
    tasks = backend.read_task_runs(run_id)
    assert len(tasks) == STEPS, (run_id, tasks)
    for t in tasks:
        assert t.state_type is StateType.COMPLETED, t
        assert [s.name for s in backend.read_states(t.id)] == ["Running", "Completed"]
    assert backend.read_logs(run_id), run_id


def _assert_gated_run_handed_back(backend: LocalBackend, run_id: str) -> None:
    """The run whose process met the outage at its start went Pending -> Scheduled (handed
    back, not failed or crashed), then ran, once, when the database answered again."""
    names = [s.name for s in backend.read_states(run_id)]
    assert names[:2] == ["Scheduled", "Pending"] and names[-2:] == ["Running", "Completed"]
    assert names[2:-2] == ["Scheduled", "Pending"], names


# -- the worker's parts, one at a time --------------------------------------------------------


def test_a_warm_process_whose_store_is_away_waits_for_its_run_and_hands_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker keeps a warmed-up process for its next run. One that cannot open the
    store must not exit (the worker may hand it a run at any moment): given a run, it
    says it did not start it (exit 4), so the worker hands the run back."""
    from sluice.schemas import FlowRunRecord, new_id
    from sluice.states import Pending
    from sluice.workers.execute import EXIT_NOT_STARTED
    from sluice.workers.payload import RunPayload
    from sluice.workers.process import launch, spawn_spare

    nothing_there = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    monkeypatch.setenv("SLUICE_DATABASE_URL", nothing_there)
    spare = spawn_spare()
    try:

        def settled() -> bool:
            if spare.poll() is not None:
                return True
            try:
                return "pipe" in Path(f"/proc/{spare.pid}/wchan").read_text()
            except OSError:
                return True

        wait_for(settled, 60, "the warm process to wait for its run or exit")
        assert spare.poll() is None, f"the warm process exited ({spare.returncode})"
        run = FlowRunRecord(id=new_id(), flow_name="counted", name="r")
        run.apply(Pending())
        process = launch(RunPayload(run, "flows.py:counted", None), spare)
        assert process.popen.wait(60) == EXIT_NOT_STARTED
    finally:
        if spare.poll() is None:
            spare.kill()
        spare.wait()
        assert spare.stdin is not None
        spare.stdin.close()


@pytest.mark.timeout(120)
def test_a_run_claimed_just_before_the_store_went_away_is_started_later_not_failed(
    tmp_path: Path,
    postgres_server: pg_instance.PostgresInstance,
    postgres: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store goes away between the claim and the read of the run's deployment: the
    run is still the worker's to start (it did not fail), once the store answers.

    The worker's steps are driven here one at a time, on a real store and with a real
    subprocess: the gap between a claim and the next read is too short to hit otherwise.
    """
    from sluice.workers.worker import Worker, WorkerOptions

    monkeypatch.setenv("SLUICE_DATABASE_URL", postgres)
    scene = Scene(tmp_path)
    settings = Settings(
        home=scene.home, database_url=postgres, store=StoreSettings(retry_timeout=1.0)
    )
    backend = LocalBackend(settings)
    try:
        DeploymentSpec(
            name="dev", entrypoint="flows.py:counted", working_dir=str(scene.project),
            options={"work_pool_name": "pool"},
        ).apply(backend)  # fmt: skip
        params = {"folder": str(scene.project), "steps": 1, "pause": 0.0}
        run_id = run_deployment("counted/dev", params, timeout=0, backend=backend).id
        options = WorkerOptions(pool="pool", name="w1", schedule=False, run_once=True)
        worker = Worker(options, settings, backend)
        [claimed] = backend.claim_flow_runs("pool", worker_name="w1", limit=1)
        postgres_server.stop("immediate")
        worker._launch(claimed)
        assert worker.children == {}
        postgres_server.start()

        def ended() -> Any:
            worker._step(time.monotonic(), claim=True)
            run = backend.read_flow_run(run_id)
            return run if run.state_type in TERMINAL_TYPES and not worker.children else None

        try:
            done = wait_for(ended, 60, "the run to be started and end")
        except AssertionError:
            names = [s.name for s in backend.read_states(run_id)]
            raise AssertionError(f"the run did not end: {names}") from None
        assert done.state_type is StateType.COMPLETED, done
        names = [s.name for s in backend.read_states(run_id)]
        assert names == ["Scheduled", "Pending", "Running", "Completed"], names
        assert worker.report.outcomes == {"completed": 1}
        assert sum(scene.counts.marks("start").values()) == 1
    finally:
        backend.close()


@pytest.mark.timeout(120)
def test_a_worker_stopped_during_an_outage_exits_and_its_run_is_found_crashed_after(
    tmp_path: Path,
    postgres_server: pg_instance.PostgresInstance,
    postgres: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM while the database is away: the worker stops its run's process and waits
    for the store to record that (``store.retry_timeout``), then exits rather than
    hanging; the run's own record of the interruption reaches the store afterwards."""
    monkeypatch.setenv("SLUICE_DATABASE_URL", postgres)
    monkeypatch.setenv("SLUICE_STORE_RETRY_TIMEOUT", "2")
    scene = Scene(tmp_path)
    backend = LocalBackend(Settings(home=scene.home, database_url=postgres))
    try:
        DeploymentSpec(
            name="dev", entrypoint="flows.py:counted", working_dir=str(scene.project),
            options={"work_pool_name": "pool"},
        ).apply(backend)  # fmt: skip
        params = {"folder": str(scene.project), "steps": 1, "pause": 120.0}
        run_id = run_deployment("counted/dev", params, timeout=0, backend=backend).id
        worker = WorkerProcess("pool", tmp_path / "worker.log", "--shutdown-grace", "0.5")
        try:
            wait_for(lambda: scene.counts.marks("start"), 60, "the run's task to start")
            pid = backend.read_flow_run(run_id).pid
            postgres_server.stop("immediate")
            assert worker.terminate(timeout=60) == 0, worker.log()
        finally:
            worker.kill()
            postgres_server.start()
        assert pid is not None and not _alive(pid)
        log = worker.log_path.read_text(errors="replace")
        assert "it is left to crash detection" in log, log
        assert log.strip().splitlines()[-1].endswith("runs: 1 unrecorded."), log
    finally:
        backend.close()
    # The next process to open the store writes back what the run's process kept:
    # it recorded its own interruption (Crashed, resumable).
    again = LocalBackend(Settings(home=scene.home, database_url=postgres))
    try:
        run = again.read_flow_run(run_id)
        assert run.state_type is StateType.CRASHED, run
        assert "interrupted" in (run.state_message or ""), run.state_message
        assert scene.spool_files() == []
    finally:
        again.close()
