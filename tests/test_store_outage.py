"""Nothing lost when the database goes away: outages waited out, a spool file, full disks.

A real private PostgreSQL server is stopped the way a crash stops it
(``-m immediate``) in the middle of a flow and started again; a SQLite file
lives on a small tmpfs that fills up. Every task run, state and log line is
counted in the store afterwards, against the same flow run without trouble.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backend.local import LocalBackend
from sluice.schemas import FlowRunFilter
from sluice.settings import Settings
from sluice.states import StateType
from tests import pg_instance

pytestmark = pytest.mark.integration

FLOW = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from sluice import flow, task, get_run_logger

    COUNTER = Path(os.environ["COUNTER_FILE"])
    PAUSE = float(os.environ.get("TASK_SLEEP", "0.01"))
    PADDING = "x" * int(os.environ.get("LOG_PADDING", "0"))

    @task
    def work(i: int) -> int:
        with COUNTER.open("a") as fh:
            fh.write(f"start {i} {time.time()!r}\\n")
        get_run_logger().info("task %d says hello%s", i, PADDING)
        time.sleep(PAUSE)
        with COUNTER.open("a") as fh:
            fh.write(f"end {i} {time.time()!r}\\n")
        return i

    @flow(name="outage")
    def outage(n: int = 300) -> int:
        return sum(work(i) for i in range(n))

    if __name__ == "__main__":
        print(outage(int(sys.argv[1])))
    """
)

#: a completion this long before a SIGKILL must be stored (or spooled)
GRACE = 0.2


# -- helpers ----------------------------------------------------------------------------


class FlowProcess:
    """The flow script run in a subprocess against one store, its counter file beside it."""

    def __init__(self, tmp_path: Path, name: str, env: dict[str, str]) -> None:
        self.script = tmp_path / "outage_flow.py"
        self.script.write_text(FLOW)
        self.counter = tmp_path / f"{name}-counter.txt"
        self.stderr_path = tmp_path / f"{name}-stderr.txt"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self.env = {
            **base,
            "COUNTER_FILE": str(self.counter),
            "SLUICE_LOGGING_TASK_STATE_LINES": "false",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, n: int) -> None:
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.script), str(n)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def run(self, n: int) -> int:
        self.start(n)
        return self.wait()

    def wait(self, timeout: float = 110) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def marks(self, what: str) -> list[tuple[int, float]]:
        if not self.counter.exists():
            return []
        lines = [line.split() for line in self.counter.read_text().splitlines()]
        return [(int(i), float(at)) for kind, i, at in lines if kind == what]

    def wait_for(self, condition: str, check: object) -> None:
        deadline = time.monotonic() + 60
        while not check():  # type: ignore[operator]
            assert self.proc is not None
            assert self.proc.poll() is None, f"the flow ended before {condition}: {self.stderr}"
            assert time.monotonic() < deadline, f"never: {condition}"
            time.sleep(0.01)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sluice", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _backend(home: Path, database_url: str = "") -> LocalBackend:
    return LocalBackend(Settings(home=home, database_url=database_url))


def _counts(backend: LocalBackend) -> dict[str, object]:
    """What the store holds of its only flow run: its state, and how many task runs,
    states (of the run and its task runs) and log lines, by kind."""
    [run] = backend.list_flow_runs(FlowRunFilter())
    tasks = backend.read_task_runs(run.id)
    states: Counter[str] = Counter(s.name for s in backend.read_states(run.id))
    for t in tasks:
        states.update(f"task {s.name}" for s in backend.read_states(t.id))
    return {
        "flow run": run.state_type,
        "task runs": len(tasks),
        "completed task runs": sum(t.state_type is StateType.COMPLETED for t in tasks),
        "states": states,
        "logs": len(backend.read_logs(run.id)),
    }


def _reference_counts(tmp_path: Path, n: int, env: dict[str, str]) -> dict[str, object]:
    """The same flow run with nothing going wrong, in a store of its own."""
    home = tmp_path / "reference-home"
    flow = FlowProcess(tmp_path, "reference", {**env, "SLUICE_HOME": str(home)})
    assert flow.run(n) == 0, flow.stderr
    backend = _backend(home)
    try:
        return _counts(backend)
    finally:
        backend.close()


def _spool_files(home: Path) -> list[Path]:
    return sorted((home / "spool").glob("*/*.jsonl"))


@pytest.fixture
def postgres() -> Iterator[pg_instance.PostgresInstance]:
    reason = pg_instance.unavailable_reason()
    if reason is not None:
        pytest.skip(f"no private PostgreSQL server: {reason}")
    with pg_instance.postgres_instance() as instance:
        yield instance


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, to fill up."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small tmpfs")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but ``leave`` bytes; the file that takes the room."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


# -- PostgreSQL stopped mid-flow ---------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_flow_whose_end_falls_in_an_outage_waits_and_loses_nothing(
    tmp_path: Path, postgres: pg_instance.PostgresInstance
) -> None:
    n = 300
    env = {"SLUICE_DATABASE_URL": postgres.url}
    expected = _reference_counts(tmp_path, n, {})
    flow = FlowProcess(tmp_path, "outage", {**env, "SLUICE_HOME": str(tmp_path / "home")})
    flow.start(n)
    flow.wait_for("200 tasks ended", lambda: len(flow.marks("end")) >= 200)
    postgres.stop("immediate")
    # The last tasks and the flow's end happen while the database is down.
    flow.wait_for("every task ended", lambda: len(flow.marks("end")) == n)
    time.sleep(1.0)  # the outage's length: it lasts past the flow's end
    assert flow.proc is not None and flow.proc.poll() is None, "the flow did not wait"
    postgres.start()
    assert flow.wait() == 0, flow.stderr
    assert "error ignored terminating" not in flow.stderr
    assert "lost" not in flow.stderr
    backend = _backend(tmp_path / "home", postgres.url)
    try:
        assert _counts(backend) == expected
    finally:
        backend.close()


@pytest.mark.timeout(300)
def test_a_longer_outage_is_spooled_replayed_by_the_next_process_and_resumed(
    tmp_path: Path, postgres: pg_instance.PostgresInstance
) -> None:
    n = 300
    home = tmp_path / "home"
    env = {
        "SLUICE_DATABASE_URL": postgres.url,
        "SLUICE_HOME": str(home),
        "SLUICE_STORE_RETRY_TIMEOUT": "1",
        "TASK_SLEEP": "0.02",
    }
    flow = FlowProcess(tmp_path, "spooled", env)
    flow.start(n)
    flow.wait_for("20 tasks ended", lambda: len(flow.marks("end")) >= 20)
    postgres.stop("immediate")
    flow.wait_for("records spooled", lambda: "records are kept in" in flow.stderr)
    spooling_from = len(flow.marks("end"))
    flow.wait_for("30 more tasks", lambda: len(flow.marks("end")) >= spooling_from + 30)
    killed_at = time.time()
    assert flow.proc is not None
    flow.proc.send_signal(signal.SIGKILL)
    flow.wait()
    ended = {i for i, at in flow.marks("end") if at < killed_at - GRACE}
    [spooled] = _spool_files(home)
    assert str(spooled) in flow.stderr
    copy = tmp_path / "spool-copy.jsonl"
    shutil.copy(spooled, copy)

    postgres.start()
    # The next process that opens the store writes what was spooled.
    backend = _backend(home, postgres.url)
    try:
        assert _spool_files(home) == []
        [run] = backend.list_flow_runs(FlowRunFilter())
        completed = {
            t.call_index
            for t in backend.read_task_runs(run.id)
            if t.state_type is StateType.COMPLETED
        }
        assert ended <= completed
        backend.mark_lapsed_runs_crashed(0.0)
        before = _counts(backend)
    finally:
        backend.close()

    # Replaying the same file again (say a crash came between the last commit
    # and its deletion) adds nothing.
    shutil.copy(copy, spooled)
    again = _backend(home, postgres.url)
    try:
        assert _spool_files(home) == []
        assert _counts(again) == before
    finally:
        again.close()

    resumed = flow.cli("flow-run", "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    starts = Counter(i for i, _ in flow.marks("start"))
    assert set(starts) == set(range(n))
    assert all(starts[i] == 1 for i in completed), "a finished task ran again"


# -- a full disk ------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_full_database_disk_spools_and_the_next_process_writes_it_all(
    tmp_path: Path, small_disk: Path
) -> None:
    n = 300
    env = {"LOG_PADDING": "2000", "TASK_SLEEP": "0"}
    expected = _reference_counts(tmp_path, n, env)
    home = tmp_path / "home"  # the spool goes here, on a disk with room
    database = f"sqlite:///{small_disk / 'sluice.db'}"
    _backend(home, database).close()  # the store exists; now the disk fills up
    filler = _fill(small_disk, leave=300_000)
    flow = FlowProcess(
        tmp_path,
        "full",
        {
            **env,
            "SLUICE_HOME": str(home),
            "SLUICE_DATABASE_URL": database,
            "SLUICE_STORE_RETRY_TIMEOUT": "1",
        },
    )
    assert flow.run(n) == 0, flow.stderr
    assert "database or disk is full" in flow.stderr
    [spooled] = _spool_files(home)
    assert f"records are kept in {spooled}" in flow.stderr

    filler.unlink()
    backend = _backend(home, database)
    try:
        assert _spool_files(home) == []
        assert _counts(backend) == expected
    finally:
        backend.close()


@pytest.mark.timeout(300)
def test_a_disk_full_for_the_spool_too_is_one_clear_error(tmp_path: Path, small_disk: Path) -> None:
    home = small_disk / "home"
    database = f"sqlite:///{small_disk / 'sluice.db'}"
    _backend(home, database).close()
    _fill(small_disk, leave=300_000)
    flow = FlowProcess(
        tmp_path,
        "full-too",
        {
            "LOG_PADDING": "2000",
            "TASK_SLEEP": "0",
            "SLUICE_HOME": str(home),
            "SLUICE_DATABASE_URL": database,
            "SLUICE_STORE_RETRY_TIMEOUT": "1",
        },
    )
    assert flow.run(300) != 0
    last = flow.stderr.strip().splitlines()[-1]
    # One line says what was lost and why, naming both failures.
    assert last.startswith("sluice: Not written, and lost: 1 flow run, "), last
    assert "database or disk is full" in last
    assert "No space left on device" in last
