"""Many processes writing one SQLite file at once: nothing lost, nothing locked out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

PROCESSES = 8
TASK_RUNS = 2000

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sluice.backend.local import LocalBackend
    from sluice.schemas import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
    from sluice.settings import Settings, StoreSettings
    from sluice.states import Completed, Pending, Running

    home, go = Path(sys.argv[1]), Path(sys.argv[4])
    index, count = int(sys.argv[2]), int(sys.argv[3])
    # Small batches and a short interval: many competing write transactions.
    store = StoreSettings(batch_size=100, flush_interval=0.005, lock_timeout=60)
    backend = LocalBackend(Settings(home=home, store=store))  # all open a new file at once
    (home / f"ready-{index}").touch()
    while not go.exists():
        time.sleep(0.005)
    flow_run = FlowRunRecord(id=f"flow-{index}", flow_name="etl", name=f"p{index}")
    backend.write_flow_run(flow_run)
    for i in range(count):
        run = TaskRunRecord(
            id=f"task-{index}-{i}", task_name="t", name=f"t-{i}", flow_run_id=flow_run.id
        )
        for state in (Pending(), Running(), Completed()):
            run.apply(state)
            backend.write_task_run(run, StateRecord.from_state(run.id, "task", state))
        if i % 100 == 0:
            backend.write_logs([LogRecord(flow_run.id, run.id, 20, "t", f"at {i}", run.created)])
    backend.close()
    print("done")
    """
)


@pytest.mark.integration
def test_eight_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), str(i), str(TASK_RUNS), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(home.glob("ready-*"))) < PROCESSES:
            assert time.monotonic() < deadline, "writers did not open the database"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=100) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "done"
        assert "locked" not in err

    engine = create_engine(f"sqlite:///{home / 'sluice.db'}")
    try:
        with engine.connect() as conn:

            def count(sql: str) -> int:
                return int(conn.exec_driver_sql(sql).scalar_one())

            assert count("SELECT count(*) FROM flow_run") == PROCESSES
            assert count("SELECT count(*) FROM task_run") == PROCESSES * TASK_RUNS
            assert count("SELECT count(*) FROM task_run WHERE state_name = 'Completed'") == (
                PROCESSES * TASK_RUNS
            )
            assert count("SELECT count(*) FROM run_state") == PROCESSES * TASK_RUNS * 3
            assert count("SELECT count(*) FROM log") == PROCESSES * TASK_RUNS // 100
    finally:
        engine.dispose()
