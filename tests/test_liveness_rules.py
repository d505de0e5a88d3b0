"""The pure rules of liveness and fencing, the process identity read from /proc,
and the fence in the store's write path (real SQLite and PostgreSQL stores)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backend.local import LocalBackend
from sluice.liveness import (
    ProcessIdentity,
    is_lapsed,
    is_superseded,
    lapse_threshold,
    lease_expired,
    lease_window,
    next_attempt,
    process_gone,
)
from sluice.schemas import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings
from sluice.states import Completed, Running, StateType
from sluice.utilities import process_identity
from tests.pg_databases import pg_database

PG_URL = os.environ.get("SLUICE_TEST_PG_URL")

# -- the rules -----------------------------------------------------------------------


def test_lapse_is_judged_on_one_clock() -> None:
    assert lapse_threshold(1000.0, 60) == 940.0
    assert not is_lapsed(last_seen=950.0, now=1000.0, timeout=60)
    assert is_lapsed(last_seen=939.0, now=1000.0, timeout=60)


def test_a_process_is_gone_only_when_its_host_can_tell() -> None:
    recorded = ProcessIdentity("boot-a/ns-1", pid=42, started=1000)
    assert process_gone(recorded, "boot-a/ns-1", started_now=None)  # no such pid
    assert process_gone(recorded, "boot-a/ns-1", started_now=2000)  # pid recycled
    assert not process_gone(recorded, "boot-a/ns-1", started_now=1000)  # alive
    # Another machine, another boot, another PID namespace: only the lapse decides.
    assert not process_gone(recorded, "boot-b/ns-1", started_now=None)
    assert not process_gone(recorded, "boot-a/ns-2", started_now=None)


def test_a_later_attempt_wins() -> None:
    assert not is_superseded(held=2, stored=None)  # not stored yet: the writer's
    assert not is_superseded(held=2, stored=2)
    assert not is_superseded(held=2, stored=1)
    assert is_superseded(held=2, stored=3)
    assert next_attempt(None) == 1 and next_attempt(0) == 1 and next_attempt(4) == 5


def test_the_lease_runs_out_before_others_may_presume_the_run_dead() -> None:
    window = lease_window(60)
    assert 0 < window < 60
    assert not lease_expired(confirmed_at=100.0, now=100.0 + window - 0.1, window=window)
    assert lease_expired(confirmed_at=100.0, now=100.0 + window, window=window)


# -- this process's identity ---------------------------------------------------------------


def test_this_process_identity_matches_proc() -> None:
    me = process_identity.this_process()
    if me is None:
        pytest.skip("no /proc on this system: processes cannot be identified")
    assert me.pid == os.getpid()
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    assert me.started == int(fields[19])
    assert me.host_id == process_identity.host_id()


def test_a_finished_process_has_no_start_time() -> None:
    if process_identity.host_id() is None:
        pytest.skip("no /proc on this system: processes cannot be identified")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    alive = process_identity.started(child.pid)
    child.wait()
    assert alive is not None
    assert process_identity.started(child.pid) is None


# -- the fence in the store's write path ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(home=tmp_path / "home")
        return
    if not PG_URL:
        pytest.skip("SLUICE_TEST_PG_URL is not set: no PostgreSQL to test against")
    with pg_database(PG_URL) as url:
        yield Settings(home=tmp_path / "home", database_url=url)


def _run(attempt: int, parent: str | None = None) -> FlowRunRecord:
    run = FlowRunRecord(id=new_id(), flow_name="f", name="r", attempt=attempt)
    run.parent_flow_run_id = parent
    run.apply(Running())
    return run


def test_writes_of_a_superseded_attempt_are_refused(settings: Settings) -> None:
    old, new, other = LocalBackend(settings), LocalBackend(settings), LocalBackend(settings)
    try:
        run = _run(attempt=1)
        old.hold_attempt(run.id, 1)
        old.write_flow_run(run)
        old.flush()
        assert not old.attempt_lost(run.id)

        # Another process takes the run over: attempt 2.
        assert new.claim_attempt(run.id) == 2

        # What the first process writes from now on is refused: the run's row and
        # state, a subflow run, task runs (one under the subflow), their states,
        # logs and heartbeats. A run this process holds unfenced is still written.
        child = _run(attempt=1, parent=run.id)
        task = TaskRunRecord(id=new_id(), task_name="t", name="t-0", flow_run_id=run.id)
        child_task = TaskRunRecord(id=new_id(), task_name="t", name="t-1", flow_run_id=child.id)
        bystander = _run(attempt=1)
        run.apply(Completed())
        old.write_flow_run(run, StateRecord.from_state(run.id, "flow", Completed()))
        old.write_flow_run(child)
        old.write_task_run(task, StateRecord.from_state(task.id, "task", Running()))
        old.write_task_run(child_task, StateRecord.from_state(child_task.id, "task", Running()))
        old.write_logs([LogRecord(run.id, task.id, 20, "l", "refused", run.updated)])
        old.heartbeat(run.id, run.updated)
        old.write_flow_run(bystander)
        old.write_logs([LogRecord(bystander.id, None, 20, "l", "kept", run.updated)])
        old.flush()

        assert old.attempt_lost(run.id)
        assert not old.confirm_attempt(run.id, 1)
        assert new.confirm_attempt(run.id, 2)
        stored = other.read_flow_run(run.id)
        assert stored.state_type is StateType.RUNNING and stored.attempt == 2
        assert stored.heartbeat is None
        assert other.read_states(run.id) == []
        assert other.read_task_runs(run.id) == []
        with pytest.raises(Exception, match="not found"):
            other.read_flow_run(child.id)
        assert other.read_task_runs(child.id) == []
        assert other.read_states(task.id) == [] and other.read_states(child_task.id) == []
        assert other.read_logs(run.id) == []
        # The bystander run, in the same batches, is stored.
        assert other.read_flow_run(bystander.id).state_type is StateType.RUNNING
        assert [g.message for g in other.read_logs(bystander.id)] == ["kept"]

        # The new attempt writes as usual.
        new.hold_attempt(run.id, 2)
        run.attempt = 2
        new.write_flow_run(run, StateRecord.from_state(run.id, "flow", Completed()))
        new.flush()
        assert not new.attempt_lost(run.id)
        assert other.read_flow_run(run.id).state_type is StateType.COMPLETED
    finally:
        for backend in (old, new, other):
            backend.close()


def test_an_older_snapshot_never_rolls_the_attempt_back(settings: Settings) -> None:
    backend = LocalBackend(settings)
    try:
        run = _run(attempt=1)
        backend.write_flow_run(run)
        backend.flush()
        assert backend.claim_attempt(run.id) == 2
        backend.write_flow_run(run)  # unfenced, still saying attempt 1
        assert backend.read_flow_run(run.id).attempt == 2
        assert backend.read_attempt(run.id) == 2
    finally:
        backend.close()
