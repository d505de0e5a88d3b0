"""The local backend in its process: one per database, fork safety, exit flush, light imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.backend.local import LocalBackend
from sluice.backend.protocol import Backend
from sluice.errors import StoreError
from sluice.schemas import FlowRunFilter, FlowRunRecord, new_id
from sluice.settings import Settings


@pytest.fixture(autouse=True)
def _close_backends() -> Iterator[None]:
    yield
    close_backends()


def _run_python(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_get_backend_defaults_to_the_database_in_sluice_home(sluice_home: Path) -> None:
    backend = get_backend()
    assert isinstance(backend, LocalBackend)
    assert isinstance(backend, Backend)
    assert backend.url == f"sqlite:///{sluice_home / 'sluice.db'}"
    assert (sluice_home / "sluice.db").is_file()


def test_one_backend_per_database(tmp_path: Path) -> None:
    a = Settings(home=tmp_path / "a")
    b = Settings(home=tmp_path / "b")
    assert get_backend(a) is get_backend(Settings(home=tmp_path / "a"))
    assert get_backend(a) is not get_backend(b)


def test_close_backends_flushes_and_a_new_backend_follows(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = get_backend(settings)
    run = FlowRunRecord(id=new_id(), flow_name="etl", name="r")
    first.write_flow_run(run)
    close_backends()
    with pytest.raises(StoreError, match="closed"):
        first.write_flow_run(run)
    second = get_backend(settings)
    assert second is not first
    assert second.read_flow_run(run.id).id == run.id


def test_a_closed_backend_is_replaced(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = get_backend(settings)
    first.close()
    assert get_backend(settings) is not first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_backend(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    parent = get_backend(settings)
    parent_run = FlowRunRecord(id=new_id(), flow_name="etl", name="parent")
    child_run = FlowRunRecord(id=new_id(), flow_name="etl", name="child")
    parent.write_flow_run(parent_run)
    parent.flush()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process that has threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            child = get_backend(settings)
            if child is not parent:
                child.write_flow_run(child_run)
                child.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get_backend(settings) is parent
    assert parent.read_flow_run(child_run.id).name == "child"


def test_records_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    script = """
        import sys
        from pathlib import Path
        from sluice.backend.factory import get_backend
        from sluice.schemas import FlowRunRecord
        from sluice.settings import Settings, StoreSettings
        slow = StoreSettings(flush_interval=3600, batch_size=10**9)
        backend = get_backend(Settings(home=Path(sys.argv[1]), store=slow))
        for i in range(500):
            backend.write_flow_run(FlowRunRecord(id=f"run-{i}", flow_name="etl", name=str(i)))
        # no flush, no close: exit must not lose them
    """
    _run_python(script, str(tmp_path))
    backend = LocalBackend(Settings(home=tmp_path))
    try:
        assert backend.read_flow_run("run-499").name == "499"
        assert backend.count_flow_runs(FlowRunFilter()) == 500
    finally:
        backend.close()


def test_sluice_imports_no_sqlalchemy_until_the_store_is_used() -> None:
    script = """
        import sys
        import sluice
        import sluice.backend, sluice.backend.factory, sluice.schemas, sluice.settings
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic"))
        print(",".join(heavy))
    """
    assert _run_python(script).strip() == ""


def test_running_a_flow_on_sqlite_never_imports_sqlalchemy(tmp_path: Path) -> None:
    # A fresh home: the store is created, written and flushed on sqlite3 alone;
    # only the first read (the CLI's job, or resume) pays for SQLAlchemy.
    script = """
        import sys
        from sluice import flow, task
        from sluice.backend.factory import get_backend
        from sluice.schemas import FlowRunFilter

        @task
        def say() -> str:
            return "hello"

        @flow
        def hello() -> str:
            return say()

        print(hello())
        backend = get_backend()
        backend.flush()
        print("sqlalchemy" in sys.modules, "alembic" in sys.modules)
        runs = backend.list_flow_runs(FlowRunFilter())
        print(len(runs), runs[0].state_name, len(backend.read_task_runs(runs[0].id)))
        print("sqlalchemy" in sys.modules)
    """
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "fresh-home")}
    lines = _run_python(script, env=env).splitlines()
    assert lines[-4:] == ["hello", "False False", "1 Completed 1", "True"]


def test_sqlite_backend_creates_its_sqlalchemy_engine_once_on_first_read(tmp_path: Path) -> None:
    backend = LocalBackend(Settings(home=tmp_path))
    try:
        run = FlowRunRecord(id=new_id(), flow_name="etl", name="r")
        backend.write_flow_run(run)
        backend.flush()
        assert backend.database._engine is None  # writes never needed it
        engines = []
        threads = [
            threading.Thread(target=lambda: engines.append(backend.engine)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(engine) for engine in engines}) == 1
        assert backend.read_flow_run(run.id).name == "r"
        assert backend.engine is engines[0]
    finally:
        backend.close()
