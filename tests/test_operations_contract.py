"""The table of operations, walked on every backend: embedded SQLite, PostgreSQL, HTTP.

Every operation of the API table (``sluice.operations.routes.ROUTES``) has one
case here, run through ``backend.execute`` on each backend: what it answers,
and for operations that refuse something, that the refusal is the same
exception with the same fields everywhere (over HTTP the client rebuilds it
from the server's answer). A new operation without a case fails
:func:`test_every_operation_has_an_implementation_a_route_and_a_case`.
The finer behaviour of each is in test_backend_contract.py and
test_deployments_backend.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.protocol import Backend
from sluice.errors import (
    AmbiguousIdError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ParameterValidationError,
    ScheduleError,
    TransitionRefused,
)
from sluice.operations import deployments as dep_ops
from sluice.operations import runs as run_ops
from sluice.operations.base import Operation
from sluice.operations.routes import ROUTES
from sluice.schemas import (
    FlowRecord,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
    WorkPoolRecord,
    WorkQueueRecord,
    new_id,
)
from sluice.states import Completed, Failed, Running, StateType, utcnow
from sluice.store.implementations import implemented
from tests.deployment_backends import (  # noqa: F401 (the fixture)
    PG_URL,
    at,
    deployments_pg_url,
    make_deployment,
    open_backend,
)

Case = Callable[[Backend], None]
CASES: dict[type[Operation[Any]], Case] = {}


def case(op_type: type[Operation[Any]]) -> Callable[[Case], Case]:
    """Register the decorated function as the contract case of ``op_type``."""

    def register(function: Case) -> Case:
        assert op_type not in CASES, f"two cases for {op_type.__name__}"
        CASES[op_type] = function
        return function

    return register


@pytest.fixture(params=["sqlite", "postgresql", "http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
    instance = open_backend(request.param, request, tmp_path)
    yield instance
    instance.close()


def test_every_operation_has_an_implementation_a_route_and_a_case() -> None:
    routed = [route.op for route in ROUTES]
    assert len(routed) == len(set(routed)), "an operation with two routes"
    assert set(routed) == set(implemented()), "an operation without a route or implementation"
    assert set(routed) == set(CASES), "an operation without a contract case"


# -- helpers --------------------------------------------------------------------------------


def _run(backend: Backend, state: Any = None, **kw: Any) -> FlowRunRecord:
    run = FlowRunRecord(id=new_id(), flow_name="etl", name=f"run-{new_id()[:8]}", **kw)
    recorded = None
    if state is not None:
        run.apply(state)
        recorded = StateRecord.from_state(run.id, "flow", state)
    backend.write_flow_run(run, recorded)
    backend.flush()
    return run


def _task(backend: Backend, run: FlowRunRecord, index: int = 0, **kw: Any) -> TaskRunRecord:
    task = TaskRunRecord(new_id(), "load", f"load-{index}", run.id, call_index=index, **kw)
    task.apply(Completed())
    backend.write_task_run(task, StateRecord.from_state(task.id, "task", Completed()))
    backend.flush()
    return task


def _deployment(backend: Backend, **kw: Any) -> Any:
    kw.setdefault("work_pool_name", "pool")
    return backend.execute(dep_ops.UpsertDeployment(make_deployment(**kw)))


# -- flows, flow runs ----------------------------------------------------------------------


@case(run_ops.ReadFlow)
def _read_flow(backend: Backend) -> None:
    backend.write_flow(FlowRecord("my_etl"))
    assert backend.execute(run_ops.ReadFlow("my-etl")).name == "my_etl"
    with pytest.raises(NotFoundError) as refused:
        backend.execute(run_ops.ReadFlow("nope"))
    assert (refused.value.kind, refused.value.key) == ("flow", "nope")


@case(run_ops.ListFlows)
def _list_flows(backend: Backend) -> None:
    backend.write_flow(FlowRecord("a", created=at(0)))
    backend.write_flow(FlowRecord("b", created=at(1)))
    assert [f.name for f in backend.execute(run_ops.ListFlows())] == ["b", "a"]
    assert [f.name for f in backend.execute(run_ops.ListFlows(limit=1))] == ["b"]


@case(run_ops.ReadFlowRun)
def _read_flow_run(backend: Backend) -> None:
    run = _run(backend)
    assert backend.execute(run_ops.ReadFlowRun(run.id[:20])).id == run.id
    twin = dataclasses.replace(run, id=run.id[:-1] + ("0" if run.id[-1] != "0" else "1"))
    backend.write_flow_run(twin)
    with pytest.raises(AmbiguousIdError) as ambiguous:
        backend.execute(run_ops.ReadFlowRun(run.id[:-1]))
    assert sorted(ambiguous.value.candidates) == sorted([run.id, twin.id])
    with pytest.raises(NotFoundError) as refused:
        backend.execute(run_ops.ReadFlowRun("ffffffff"))
    assert (refused.value.kind, refused.value.key) == ("flow run", "ffffffff")


@case(run_ops.ListFlowRuns)
def _list_flow_runs(backend: Backend) -> None:
    done = [_run(backend, Completed(), created=at(i)) for i in range(3)]
    _run(backend, Failed(), created=at(9))
    found = backend.execute(run_ops.ListFlowRuns(state_types=[StateType.COMPLETED], limit=2))
    assert [r.id for r in found] == [done[2].id, done[1].id]
    assert [r.id for r in backend.execute(run_ops.ListFlowRuns(limit=1, offset=3))] == [done[0].id]


@case(run_ops.CountFlowRuns)
def _count_flow_runs(backend: Backend) -> None:
    for i in range(3):
        _run(backend, Completed(), tags=["a"] if i else [])
    assert backend.execute(run_ops.CountFlowRuns(tags=["a"], limit=1)) == 2


@case(run_ops.SetFlowRunState)
def _set_flow_run_state(backend: Backend) -> None:
    run = _run(backend)
    running = backend.execute(run_ops.SetFlowRunState(run.id, StateType.RUNNING))
    assert (running.state_type, running.state_name) == (StateType.RUNNING, "Running")
    assert running.start_time is not None
    done = backend.execute(run_ops.SetFlowRunState(run.id, StateType.COMPLETED, "Done", "ok"))
    assert (done.state_name, done.state_message, done.end_time is not None) == ("Done", "ok", True)
    with pytest.raises(TransitionRefused) as refused:
        backend.execute(run_ops.SetFlowRunState(run.id, StateType.RUNNING))
    assert (refused.value.run_id, refused.value.rule) == (run.id, "NoTransitionOutOfTerminal")
    states = backend.execute(run_ops.ReadStates(run.id))
    assert [s.name for s in states] == ["Running", "Done"]


@case(run_ops.CancelFlowRun)
def _cancel_flow_run(backend: Backend) -> None:
    waiting = _run(backend)
    cancelled = backend.execute(run_ops.CancelFlowRun(waiting.id[:13]))
    assert (cancelled.id, cancelled.state_type) == (waiting.id, StateType.CANCELLED)
    running = _run(backend, Running())
    assert backend.execute(run_ops.CancelFlowRun(running.id)).state_type is StateType.CANCELLING
    finished = _run(backend, Completed())
    with pytest.raises(TransitionRefused) as refused:
        backend.execute(run_ops.CancelFlowRun(finished.id))
    assert refused.value.run_id == finished.id and refused.value.rule
    assert isinstance(refused.value, ConflictError)


@case(run_ops.MarkLapsedRunsCrashed)
def _mark_lapsed_runs_crashed(backend: Backend) -> None:
    silent = _run(backend, Running(timestamp=utcnow() - dt.timedelta(hours=1)))
    assert backend.execute(run_ops.MarkLapsedRunsCrashed(60)) == [silent.id]
    assert backend.execute(run_ops.ReadFlowRun(silent.id)).state_type is StateType.CRASHED
    with pytest.raises(InvalidInputError) as refused:
        backend.execute(run_ops.MarkLapsedRunsCrashed(-1))
    assert refused.value.field == "timeout"


@case(run_ops.MarkGoneRunsCrashed)
def _mark_gone_runs_crashed(backend: Backend) -> None:
    gone = _run(backend, Running(), host_id="host-a", pid=41, pid_started=7)
    other = _run(backend, Running(), host_id="host-a", pid=42, pid_started=7)
    seen = [
        run_ops.GoneProcess(gone.id, "host-a", 41, 7),
        run_ops.GoneProcess(other.id, "host-a", 42, 8),  # since reused by a later process
    ]
    assert backend.execute(run_ops.MarkGoneRunsCrashed(seen)) == [gone.id]
    assert backend.execute(run_ops.ReadFlowRun(other.id)).state_type is StateType.RUNNING


@case(run_ops.ClaimAttempt)
def _claim_attempt(backend: Backend) -> None:
    run = _run(backend)
    assert [backend.execute(run_ops.ClaimAttempt(run.id)) for _ in range(2)] == [1, 2]
    with pytest.raises(NotFoundError) as refused:
        backend.execute(run_ops.ClaimAttempt(new_id()))
    assert refused.value.kind == "flow run"


@case(run_ops.ReadAttempt)
def _read_attempt(backend: Backend) -> None:
    run = _run(backend)
    assert backend.execute(run_ops.ReadAttempt(run.id)) == 0
    backend.execute(run_ops.ClaimAttempt(run.id))
    assert backend.execute(run_ops.ReadAttempt(run.id)) == 1
    with pytest.raises(NotFoundError):
        backend.execute(run_ops.ReadAttempt(new_id()))


# -- task runs, states, logs ------------------------------------------------------------------


@case(run_ops.ReadTaskRuns)
def _read_task_runs(backend: Backend) -> None:
    run = _run(backend)
    tasks = [_task(backend, run, i, created=at(i)) for i in range(3)]
    assert [t.id for t in backend.execute(run_ops.ReadTaskRuns(run.id))] == [t.id for t in tasks]


@case(run_ops.ReadJournal)
def _read_journal(backend: Backend) -> None:
    run = _run(backend)
    kept = _task(backend, run, 0, result='{"v": 1}')
    _task(backend, run, 1)  # no result: nothing to replay
    assert [t.id for t in backend.execute(run_ops.ReadJournal(run.id))] == [kept.id]


@case(run_ops.ReadTaskRun)
def _read_task_run(backend: Backend) -> None:
    task = _task(backend, _run(backend))
    assert backend.execute(run_ops.ReadTaskRun(task.id[:20])).task_key == "load:0"
    with pytest.raises(NotFoundError) as refused:
        backend.execute(run_ops.ReadTaskRun("ffffffff"))
    assert refused.value.kind == "task run"


@case(run_ops.FindCachedTaskRun)
def _find_cached_task_run(backend: Backend) -> None:
    run = _run(backend)
    hit = _task(backend, run, cache_key="k", result='{"v": 2}', cache_expiration=at(100))
    assert backend.execute(run_ops.FindCachedTaskRun("k", at(50))).id == hit.id  # type: ignore[union-attr]
    assert backend.execute(run_ops.FindCachedTaskRun("k", at(200))) is None
    assert backend.execute(run_ops.FindCachedTaskRun("other")) is None


@case(run_ops.ReadStates)
def _read_states(backend: Backend) -> None:
    run = _run(backend, Running())
    run.apply(Completed())
    backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", Completed()))
    assert [s.type for s in backend.execute(run_ops.ReadStates(run.id))] == [
        StateType.RUNNING,
        StateType.COMPLETED,
    ]
    assert backend.execute(run_ops.ReadStates(new_id())) == []


@case(run_ops.ReadLogs)
def _read_logs(backend: Backend) -> None:
    run = _run(backend)
    lines = [LogRecord(run.id, None, 10 * (i + 1), "app", f"line {i}", at(i)) for i in range(4)]
    backend.write_logs(lines)
    found = backend.execute(run_ops.ReadLogs(run.id, min_level=20, offset=1, limit=2))
    assert [line.message for line in found] == ["line 2", "line 3"]


# -- deployments and their runs -----------------------------------------------------------------


@case(dep_ops.UpsertDeployment)
def _upsert_deployment(backend: Backend) -> None:
    first = _deployment(backend, schedules=[{"cron": "0 6 * * *"}])
    assert first.schedules[0]["kind"] == "cron"  # stored in its canonical form
    again = _deployment(backend, description="new")
    assert (again.id, again.description, again.schedules) == (first.id, "new", [])
    with pytest.raises(ScheduleError, match="schedule kind 'weekly'"):
        _deployment(backend, schedules=[{"kind": "weekly"}])
    with pytest.raises(InvalidInputError, match="must not contain '/'"):
        _deployment(backend, name="a/b")


@case(dep_ops.ReadDeployment)
def _read_deployment(backend: Backend) -> None:
    dep = _deployment(backend)
    assert backend.execute(dep_ops.ReadDeployment("etl/daily")).id == dep.id
    assert backend.execute(dep_ops.ReadDeployment(dep.id)).full_name == "etl/daily"
    for key in ("etl/weekly", new_id()):
        with pytest.raises(NotFoundError) as refused:
            backend.execute(dep_ops.ReadDeployment(key))
        assert (refused.value.kind, refused.value.key) == ("deployment", key)


@case(dep_ops.ListDeployments)
def _list_deployments(backend: Backend) -> None:
    made = [_deployment(backend, name=f"d{i}") for i in range(3)]
    assert [d.name for d in backend.execute(dep_ops.ListDeployments(limit=2, offset=1))] == [
        "d1",
        "d2",
    ]
    assert len(backend.execute(dep_ops.ListDeployments(limit=0))) == 3
    assert backend.execute(dep_ops.ListDeployments(id=made[1].id)) == [made[1]]
    assert backend.execute(dep_ops.ListDeployments(id=new_id())) == []


@case(dep_ops.UpdateDeployment)
def _update_deployment(backend: Backend) -> None:
    dep = _deployment(backend)
    assert backend.execute(dep_ops.UpdateDeployment(dep.id, {"paused": True})).paused is True
    with pytest.raises(InvalidInputError, match="cannot change entrypoint"):
        backend.execute(dep_ops.UpdateDeployment("etl/daily", {"entrypoint": "x.py:y"}))
    with pytest.raises(ScheduleError):
        backend.execute(dep_ops.UpdateDeployment("etl/daily", {"schedules": [{"kind": "cron"}]}))


@case(dep_ops.DeleteDeployment)
def _delete_deployment(backend: Backend) -> None:
    dep = _deployment(backend)
    assert backend.execute(dep_ops.DeleteDeployment(dep.id)) is None
    with pytest.raises(NotFoundError):
        backend.execute(dep_ops.DeleteDeployment("etl/daily"))


@case(dep_ops.CreateFlowRunFromDeployment)
def _create_flow_run_from_deployment(backend: Backend) -> None:
    _deployment(backend)
    made = dep_ops.CreateFlowRunFromDeployment("etl/daily", {"n": 5}, idempotency_key="once")
    run = backend.execute(made)
    assert (run.parameters, run.state_name) == ({"n": 5}, "Scheduled")
    assert backend.execute(made).id == run.id
    with pytest.raises(ParameterValidationError) as refused:
        backend.execute(dep_ops.CreateFlowRunFromDeployment("etl/daily", {"n": "x"}))
    assert refused.value.flow_name == "etl"
    assert refused.value.errors == [("n", "expected integer, got string 'x'")]


@case(dep_ops.ListDeploymentRuns)
def _list_deployment_runs(backend: Backend) -> None:
    dep = _deployment(backend)
    for i in range(3):
        backend.execute(dep_ops.CreateFlowRunFromDeployment(dep.id, scheduled_start_time=at(i)))
    found = backend.execute(dep_ops.ListDeploymentRuns("etl/daily", scheduled_after=at(1)))
    assert [r.scheduled_start_time for r in found] == [at(1), at(2)]
    assert backend.execute(dep_ops.ListDeploymentRuns(dep.id, [StateType.RUNNING])) == []


@case(dep_ops.CreateScheduledRuns)
def _create_scheduled_runs(backend: Backend) -> None:
    dep = _deployment(backend)
    skipped = [dep_ops.SkippedTick(at(60), "missed")]
    made = dep_ops.CreateScheduledRuns(dep.id, [at(0), at(30)], skipped, planned_until=at(90))
    assert backend.execute(made) == 3
    assert backend.execute(made) == 0  # one run per tick, whoever asks again
    names = [r.state_name for r in backend.execute(dep_ops.ListDeploymentRuns(dep.id))]
    assert names == ["Scheduled", "Scheduled", "Skipped"]
    assert backend.execute(dep_ops.ReadDeployment(dep.id)).planned_until == at(90)


@case(dep_ops.ClaimFlowRuns)
def _claim_flow_runs(backend: Backend) -> None:
    dep = _deployment(backend)
    backend.execute(dep_ops.CreateScheduledRuns(dep.id, [at(0), at(1)]))
    claimed = backend.execute(dep_ops.ClaimFlowRuns("w", limit=5, pool_name="pool", now=at(5)))
    assert [r.state_type for r in claimed] == [StateType.PENDING] * 2
    assert {r.worker_name for r in claimed} == {"w"}
    with pytest.raises(InvalidInputError) as refused:
        backend.execute(dep_ops.ClaimFlowRuns("w", limit=0, pool_name="pool"))
    assert refused.value.field == "limit"
    with pytest.raises(NotFoundError) as unknown:
        backend.execute(dep_ops.ClaimFlowRuns("w", pool_name="nope"))
    assert (unknown.value.kind, unknown.value.key) == ("work pool", "nope")


@case(dep_ops.ReleaseFlowRuns)
def _release_flow_runs(backend: Backend) -> None:
    dep = _deployment(backend)
    backend.execute(dep_ops.CreateScheduledRuns(dep.id, [at(0)]))
    [run] = backend.execute(dep_ops.ClaimFlowRuns("w", pool_name="pool", now=at(5)))
    assert backend.execute(dep_ops.ReleaseFlowRuns([run.id], "other")) == []
    assert backend.execute(dep_ops.ReleaseFlowRuns([run.id], "w")) == [run.id]
    back = backend.execute(run_ops.ReadFlowRun(run.id))
    assert (back.state_type, back.state_message) == (StateType.SCHEDULED, dep_ops.RELEASED_MESSAGE)


@case(dep_ops.ResumeFlowRun)
def _resume_flow_run(backend: Backend) -> None:
    dep = _deployment(backend)
    run = backend.execute(dep_ops.CreateFlowRunFromDeployment(dep.id))
    with pytest.raises(ConflictError) as not_finished:
        backend.execute(dep_ops.ResumeFlowRun(run.id))
    assert (not_finished.value.kind, not_finished.value.key) == ("flow run", run.id)
    record = backend.execute(run_ops.ReadFlowRun(run.id))
    record.apply(Failed())
    backend.write_flow_run(record, StateRecord.from_state(run.id, "flow", Failed()))
    _task(backend, record)
    with pytest.raises(InvalidInputError) as refused:
        backend.execute(dep_ops.ResumeFlowRun(run.id, "publish"))
    assert refused.value.field == "from_task"
    assert str(refused.value).startswith("from_task: ")
    resumed = backend.execute(dep_ops.ResumeFlowRun(run.id, "load:0"))
    assert resumed.state_name == "AwaitingResume"


# -- the scheduler's steps ---------------------------------------------------------------------


@case(dep_ops.MarkLateRuns)
def _mark_late_runs(backend: Backend) -> None:
    dep = _deployment(backend)
    backend.execute(dep_ops.CreateScheduledRuns(dep.id, [at(0)]))
    late_at = utcnow() + dt.timedelta(hours=1)
    [late] = backend.execute(dep_ops.MarkLateRuns(grace=60, now=late_at))
    assert backend.execute(run_ops.ReadFlowRun(late)).state_name == "Late"
    with pytest.raises(InvalidInputError) as refused:
        backend.execute(dep_ops.MarkLateRuns(grace=-1))
    assert refused.value.field == "grace"


@case(dep_ops.RequeueOrphanedRuns)
def _requeue_orphaned_runs(backend: Backend) -> None:
    dep = _deployment(backend)
    backend.execute(dep_ops.CreateScheduledRuns(dep.id, [at(0)]))
    [run] = backend.execute(dep_ops.ClaimFlowRuns("gone", pool_name="pool", now=at(5)))
    later = utcnow() + dt.timedelta(hours=1)
    assert backend.execute(dep_ops.RequeueOrphanedRuns(60, now=later)) == [run.id]
    assert backend.execute(run_ops.ReadFlowRun(run.id)).state_type is StateType.SCHEDULED


@case(dep_ops.SkipRunsOverMaxActive)
def _skip_runs_over_max_active(backend: Backend) -> None:
    dep = _deployment(backend, max_active_runs=1)
    backend.execute(dep_ops.CreateScheduledRuns(dep.id, [at(0), at(1), at(2)]))
    backend.execute(dep_ops.ClaimFlowRuns("w", pool_name="pool", now=at(5)))
    skipped = backend.execute(dep_ops.SkipRunsOverMaxActive(now=at(10)))
    # The one active run fills the deployment's one slot: the waiting runs are Skipped.
    assert len(skipped) == 2
    assert {backend.execute(run_ops.ReadFlowRun(i)).state_name for i in skipped} == {"Skipped"}


# -- work pools, queues, workers ----------------------------------------------------------------


@case(dep_ops.CreateWorkPool)
def _create_work_pool(backend: Backend) -> None:
    pool = backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p", description="d")))
    assert (pool.name, pool.description) == ("p", "d")
    with pytest.raises(ConflictError) as refused:
        backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    assert (refused.value.kind, refused.value.key) == ("work pool", "p")
    assert refused.value.reason == "a work pool of that name exists"
    with pytest.raises(InvalidInputError, match="unknown work pool type"):
        backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("q", type="docker")))


@case(dep_ops.ReadWorkPool)
def _read_work_pool(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    assert backend.execute(dep_ops.ReadWorkPool("p")).type == "process"
    with pytest.raises(NotFoundError) as refused:
        backend.execute(dep_ops.ReadWorkPool("nope"))
    assert (refused.value.kind, refused.value.key) == ("work pool", "nope")


@case(dep_ops.ListWorkPools)
def _list_work_pools(backend: Backend) -> None:
    for name in ("b", "a"):
        backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord(name)))
    assert [p.name for p in backend.execute(dep_ops.ListWorkPools())] == ["a", "b"]


@case(dep_ops.UpdateWorkPool)
def _update_work_pool(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    changed = backend.execute(dep_ops.UpdateWorkPool("p", {"concurrency_limit": 3, "paused": True}))
    assert (changed.concurrency_limit, changed.paused) == (3, True)
    with pytest.raises(InvalidInputError, match="cannot change type"):
        backend.execute(dep_ops.UpdateWorkPool("p", {"type": "docker"}))


@case(dep_ops.DeleteWorkPool)
def _delete_work_pool(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    _deployment(backend, work_pool_name="used")
    assert backend.execute(dep_ops.DeleteWorkPool("p")) is None
    with pytest.raises(ConflictError, match="etl/daily"):
        backend.execute(dep_ops.DeleteWorkPool("used"))


@case(dep_ops.CreateWorkQueue)
def _create_work_queue(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    queue = backend.execute(dep_ops.CreateWorkQueue(WorkQueueRecord("p", "fast", priority=0)))
    assert (queue.pool_name, queue.name, queue.priority) == ("p", "fast", 0)
    with pytest.raises(NotFoundError):
        backend.execute(dep_ops.CreateWorkQueue(WorkQueueRecord("nope", "q")))


@case(dep_ops.ReadWorkQueue)
def _read_work_queue(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    assert backend.execute(dep_ops.ReadWorkQueue("p", "default")).name == "default"
    with pytest.raises(NotFoundError) as refused:
        backend.execute(dep_ops.ReadWorkQueue("p", "nope"))
    assert refused.value.kind == "work queue"


@case(dep_ops.ListWorkQueues)
def _list_work_queues(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    backend.execute(dep_ops.CreateWorkQueue(WorkQueueRecord("p", "first", priority=0)))
    assert [q.name for q in backend.execute(dep_ops.ListWorkQueues("p"))] == ["first", "default"]


@case(dep_ops.UpdateWorkQueue)
def _update_work_queue(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    changed = backend.execute(dep_ops.UpdateWorkQueue("p", "default", {"priority": 5}))
    assert changed.priority == 5
    with pytest.raises(InvalidInputError, match="priority"):
        backend.execute(dep_ops.UpdateWorkQueue("p", "default", {"priority": "high"}))


@case(dep_ops.DeleteWorkQueue)
def _delete_work_queue(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    backend.execute(dep_ops.CreateWorkQueue(WorkQueueRecord("p", "spare")))
    assert backend.execute(dep_ops.DeleteWorkQueue("p", "spare")) is None
    with pytest.raises(ConflictError) as refused:
        backend.execute(dep_ops.DeleteWorkQueue("p", "default"))
    assert refused.value.kind == "work queue"


@case(dep_ops.WorkerHeartbeat)
def _worker_heartbeat(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    worker = backend.execute(dep_ops.WorkerHeartbeat("p", "w1", pid=12))
    assert (worker.status, worker.hostname, worker.pid) == ("ONLINE", socket.gethostname(), 12)
    with pytest.raises(InvalidInputError) as refused:
        backend.execute(dep_ops.WorkerHeartbeat("p", "w1", status="DANCING"))
    assert refused.value.field == "status"


@case(dep_ops.ListWorkers)
def _list_workers(backend: Backend) -> None:
    backend.execute(dep_ops.CreateWorkPool(WorkPoolRecord("p")))
    # Silent for longer than any store's heartbeat timeout (the test server's is years).
    silent_since = utcnow() - dt.timedelta(days=20 * 365)
    backend.execute(dep_ops.WorkerHeartbeat("p", "old", now=silent_since))
    backend.execute(dep_ops.WorkerHeartbeat("p", "new"))
    found = backend.execute(dep_ops.ListWorkers("p"))
    assert [(w.name, w.status) for w in found] == [("new", "ONLINE"), ("old", "OFFLINE")]
    with pytest.raises(NotFoundError):
        backend.execute(dep_ops.ListWorkers("nope"))


@pytest.mark.parametrize("op_type", list(CASES), ids=lambda t: t.__name__)
def test_operation(backend: Backend, op_type: type[Operation[Any]]) -> None:
    CASES[op_type](backend)
