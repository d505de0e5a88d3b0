"""Liveness with real processes: a SIGKILLed run on this host is Crashed at once, a
SIGKILLed worker reads OFFLINE after its heartbeat lapses, liveness is judged with
the database's clock whatever the running host's clock says, and a superseded
attempt that wakes up can neither write nor go on running."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sluice.states import StateType
from tests.pg_databases import pg_database

pytestmark = pytest.mark.integration

PG_URL = os.environ.get("SLUICE_TEST_PG_URL")

FLOW = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    if os.environ.get("LIVENESS_SHIFT"):
        # This process's clock is off: the engine's one clock (sluice.states.utcnow)
        # is shifted before anything of the engine imports it.
        import datetime
        import sluice.states as states

        _real = states.utcnow
        _shift = datetime.timedelta(seconds=float(os.environ["LIVENESS_SHIFT"]))
        states.utcnow = lambda: _real() + _shift

    from sluice import flow, task

    OUT = Path(os.environ["LIVENESS_OUT"])
    STEP = float(os.environ.get("LIVENESS_STEP", "0.05"))

    @task
    def work(i: int) -> int:
        with OUT.open("a") as fh:  # one line per execution: the counter
            fh.write(f"{i} {os.getpid()}\\n")
        time.sleep(STEP)
        return i

    @flow(name="liveness")
    def liveness(n: int = 30) -> int:
        return sum(work(i) for i in range(n))

    if __name__ == "__main__":
        print(liveness())
    """
)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "LIVENESS_OUT": str(home.parent / "out.txt"),
        "SLUICE_HOME": str(home),
        "SLUICE_HEARTBEAT_INTERVAL": "0.2",
        "SLUICE_LOGGING_TASK_STATE_LINES": "false",
    }
    env.update(extra)
    return env


def _sluice(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def _lines(out: Path) -> list[tuple[int, int]]:
    if not out.exists():
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in out.read_text().splitlines())]


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Poll ``condition`` until true; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _start_flow(script: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


# -- same host: a gone process is Crashed at once ----------------------------------------


def test_resume_is_accepted_right_after_a_sigkill_on_the_same_host(tmp_path: Path) -> None:
    home, script, out = tmp_path / "home", tmp_path / "flow.py", tmp_path / "out.txt"
    script.write_text(FLOW)
    # A lapse of 60 s: only the same-host check can let the resume in at once.
    env = _env(home, SLUICE_HEARTBEAT_TIMEOUT="60", SLUICE_STORE_FLUSH_INTERVAL="0.02")
    proc = _start_flow(script, env)

    def running_with_ten_tasks() -> bool:
        assert proc.poll() is None, proc.communicate()
        if len(_lines(out)) < 10 or not (home / "sluice.db").exists():
            return False
        with sqlite3.connect(home / "sluice.db") as db:
            found = db.execute("SELECT count(*) FROM flow_run WHERE state_type = 'RUNNING'")
            return bool(found.fetchone()[0])

    _wait(running_with_ten_tasks, "ten tasks of a recorded run")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    with sqlite3.connect(home / "sluice.db") as db:
        ((run_id, state),) = db.execute("SELECT id, state_type FROM flow_run").fetchall()
    assert state == StateType.RUNNING.value

    started = time.monotonic()
    resumed = _sluice(env, "flow-run", "resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert time.monotonic() - started < 30  # not after the 60 s lapse
    assert "Completed" in resumed.stdout
    listing = json.loads(_sluice(env, "flow-run", "ls", "-o", "json").stdout)
    assert [(r["id"], r["state_type"], r["run_count"]) for r in listing] == [
        (run_id, StateType.COMPLETED.value, 2)
    ]
    counts = Counter(i for i, _pid in _lines(out))
    assert set(counts) == set(range(30))
    assert all(n <= 2 for n in counts.values())  # only what was in flight ran again


# -- workers ------------------------------------------------------------------------------


def test_a_sigkilled_worker_reads_offline_once_its_heartbeat_lapses(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from sluice.server.app import create_app
    from sluice.settings import Settings

    home = tmp_path / "home"
    env = _env(home, SLUICE_HEARTBEAT_TIMEOUT="2")
    worker = subprocess.Popen(
        [sys.executable, "-m", "sluice", "worker", "start", "--pool", "p", "--name", "w1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def status() -> str:
        shown = _sluice(env, "work-pool", "inspect", "p", "-o", "json")
        if shown.returncode != 0:
            return "none"
        workers = json.loads(shown.stdout)["workers"]
        return str(workers[0]["status"]) if workers else "none"

    try:
        _wait(lambda: status() == "ONLINE", "the worker online")
        time.sleep(2.5)  # longer than the lapse: a live worker stays ONLINE
        assert status() == "ONLINE"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    took = _wait(lambda: status() == "OFFLINE", "the killed worker offline", timeout=30)
    assert took < 15

    settings = Settings(home=home, heartbeat_timeout=2)
    with TestClient(
        create_app(settings, crash_interval=3600), base_url="http://127.0.0.1"
    ) as client:
        (listed,) = client.get("/api/work_pools/p/workers").json()
        assert listed["status"] == "OFFLINE"
        pools = client.get("/api/ui/work_pools").json()["pools"]
        assert [w["online"] for w in pools[0]["workers"]] == [False]
        listing = _sluice(env, "work-pool", "ls", "-o", "json")
        assert json.loads(listing.stdout)[0]["online_workers"] == 0


# -- one clock, and fenced attempts --------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("SLUICE_TEST_PG_URL is not set: the clock tests need a database server")
    with pg_database(PG_URL) as url:
        yield url


def _shifted(env: dict[str, str], seconds: int) -> dict[str, str]:
    """``env`` for a flow process whose clock is ``seconds`` off (see FLOW)."""
    return {**env, "LIVENESS_SHIFT": str(seconds)}


def _observer(home: Path, url: str, timeout: float) -> tuple[object, Callable[[], list[str]]]:
    from sluice.backend.local import LocalBackend
    from sluice.engine.heartbeat import detect_crashed_runs
    from sluice.settings import Settings

    settings = Settings(home=home, database_url=url, heartbeat_timeout=timeout)
    backend = LocalBackend(settings)
    return backend, lambda: detect_crashed_runs(backend, settings)


@pytest.mark.timeout(180)
def test_a_host_whose_clock_is_behind_keeps_its_live_run(tmp_path: Path, pg_url: str) -> None:
    home, script, out = tmp_path / "home", tmp_path / "flow.py", tmp_path / "out.txt"
    script.write_text(FLOW)
    env = _env(home, SLUICE_DATABASE_URL=pg_url, SLUICE_HEARTBEAT_TIMEOUT="2")
    env["LIVENESS_STEP"] = "0.15"
    proc = _start_flow(script, _shifted(env, -120))
    backend, detect = _observer(home, pg_url, timeout=2)
    marked: list[str] = []
    try:
        while proc.poll() is None:  # look as often as a busy server would
            marked += detect()
            time.sleep(0.1)
    finally:
        backend.close()  # type: ignore[attr-defined]
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert marked == []
    counts = Counter(i for i, _pid in _lines(out))
    assert counts == Counter(range(30))


@pytest.mark.timeout(240)
def test_a_host_whose_clock_is_ahead_and_a_superseded_attempt(tmp_path: Path, pg_url: str) -> None:
    """A run on a host 120 s ahead stops beating (SIGSTOP): it is Crashed within the
    normal lapse, resumed by another process, and when the first one wakes up it
    can neither record anything nor run another task."""
    home, script, out = tmp_path / "home", tmp_path / "flow.py", tmp_path / "out.txt"
    script.write_text(FLOW)
    env = _env(home, SLUICE_DATABASE_URL=pg_url, SLUICE_HEARTBEAT_TIMEOUT="2")
    env["LIVENESS_STEP"] = "0.1"
    env["SLUICE_STORE_FLUSH_INTERVAL"] = "0.02"
    first = _start_flow(script, _shifted(env, +120))
    backend, detect = _observer(home, pg_url, timeout=2)
    try:
        _wait(lambda: len(_lines(out)) >= 8 or first.poll() is not None, "eight tasks")
        first.send_signal(signal.SIGSTOP)
        stopped_lines = len(_lines(out))
        marked: list[str] = []
        took = _wait(lambda: bool(marked.extend(detect()) or marked), "the run Crashed", 60)
        assert took < 10  # the 2 s lapse, not 120 s more
        (run_id,) = marked
        history = [s.type for s in backend.read_states(run_id)]  # type: ignore[attr-defined]
        assert history[-1] is StateType.CRASHED

        resumed = _sluice(env, "flow-run", "resume", run_id)
        assert resumed.returncode == 0, resumed.stderr
        after_resume = backend.read_flow_run(run_id)  # type: ignore[attr-defined]
        assert after_resume.state_type is StateType.COMPLETED and after_resume.attempt == 2
        states_after_resume = backend.read_states(run_id)  # type: ignore[attr-defined]
        tasks_after_resume = backend.read_task_runs(run_id)  # type: ignore[attr-defined]

        first.send_signal(signal.SIGCONT)
        first.communicate(timeout=60)
        assert first.returncode != 0  # it stopped instead of finishing the flow

        # It ran no further task, and the store holds nothing more from it.
        old_pid = first.pid
        assert sum(pid == old_pid for _i, pid in _lines(out)) == sum(
            pid == old_pid for _i, pid in _lines(out)[:stopped_lines]
        )
        final = backend.read_flow_run(run_id)  # type: ignore[attr-defined]
        assert final.state_type is StateType.COMPLETED and final.attempt == 2
        assert final.pid != old_pid
        assert backend.read_states(run_id) == states_after_resume  # type: ignore[attr-defined]
        assert backend.read_task_runs(run_id) == tasks_after_resume  # type: ignore[attr-defined]
        counts = Counter(i for i, _pid in _lines(out))
        assert set(counts) == set(range(30))
        # Twice only what the first process ran before it stopped without its
        # completion being recorded yet (the writer's window): nothing after.
        again = {i for i, n in counts.items() if n > 1}
        assert again <= {i for i, pid in _lines(out)[:stopped_lines] if pid == old_pid}
        assert all(n <= 2 for n in counts.values())
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
        backend.close()  # type: ignore[attr-defined]
