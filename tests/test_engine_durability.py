"""Nothing recorded is lost: many processes on one SQLite file, big maps, bad stores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice import flow, task
from sluice.errors import StoreCorruptError, StoreError
from sluice.states import StateType
from tests.helpers import flow_runs, only_flow_run

FLOW_SCRIPT = textwrap.dedent(
    """
    import sys
    from sluice import flow, task

    @task
    def step(i: int) -> int:
        return i * 2

    @flow(name="concurrent-writer")
    def writer(n: int) -> int:
        total = sum(f.result() for f in step.map(range(n)))
        for i in range(n // 4):
            step(i)
        return total

    if __name__ == "__main__":
        print(writer(int(sys.argv[1])))
    """
)


@pytest.mark.integration
def test_eight_flow_processes_write_one_sqlite_file_at_once(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(FLOW_SCRIPT)
    env = {**os.environ, "SLUICE_LOGGING_TASK_STATE_LINES": "false"}
    per_process = 400
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(per_process)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=110) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == str(sum(i * 2 for i in range(per_process)))
    runs = flow_runs("concurrent-writer")
    assert len(runs) == 8
    assert all(r.state_type is StateType.COMPLETED for r in runs)
    from sluice.backend.factory import get_backend

    backend = get_backend()
    for run in runs:
        tasks = backend.read_task_runs(run.id)
        assert len(tasks) == per_process + per_process // 4
        assert all(t.state_type is StateType.COMPLETED for t in tasks)


@pytest.mark.slow
# ~20 s on a quiet machine; it came within seconds of the default 120 s on a busy one.
@pytest.mark.timeout(300)
def test_a_flow_with_100000_mapped_tasks_records_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICE_LOGGING_TASK_STATE_LINES", "false")

    @task
    def tiny(i: int) -> int:
        return i

    @flow
    def huge(n: int) -> int:
        return len([f for f in tiny.map(range(n))])

    assert huge(100_000) == 100_000
    run = only_flow_run("huge")
    from sluice.backend.factory import get_backend

    tasks = get_backend().read_task_runs(run.id)
    assert len(tasks) == 100_000
    assert {t.state_type for t in tasks} == {StateType.COMPLETED}


def test_a_corrupt_database_is_a_clear_error_naming_the_path(sluice_home: Path) -> None:
    sluice_home.mkdir(parents=True, exist_ok=True)
    db = sluice_home / "sluice.db"
    db.write_bytes(b"this is not a database, just some text" * 100)

    @flow
    def anything() -> None:
        pass

    with pytest.raises(StoreCorruptError) as info:
        anything()
    assert str(db) in str(info.value)
    assert db.read_bytes().startswith(b"this is not a database")


def test_an_unusable_database_path_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SLUICE_DATABASE_URL", f"sqlite:///{blocker}/sub/sluice.db")

    @flow
    def nowhere() -> None:
        pass

    with pytest.raises(StoreError) as info:
        nowhere()
    assert str(blocker) in str(info.value)
