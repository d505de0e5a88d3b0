"""The Backend contract: one suite over embedded SQLite, PostgreSQL and HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.protocol import Backend
from sluice.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ParameterValidationError,
    ScheduleError,
)
from sluice.schemas import (
    FlowRunFilter,
    FlowRunRecord,
    StateRecord,
    WorkPoolRecord,
    WorkQueueRecord,
    new_id,
    scheduled_key,
)
from sluice.states import Completed, Failed, Running, StateType, utcnow
from tests.deployment_backends import (  # noqa: F401 (the fixture)
    CRON,
    INTERVAL,
    KINDS,
    at,
    deployments_pg_url,
    make_deployment,
    open_backend,
)

NOW = at(0)


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    instance = open_backend(request.param, request, tmp_path)
    yield instance
    instance.close()


def test_backend_satisfies_the_protocol(backend: Any) -> None:
    assert isinstance(backend, Backend)


# -- work pools and queues ------------------------------------------------------------------


def test_work_pool_lifecycle(backend: Any) -> None:
    pool = backend.create_work_pool(WorkPoolRecord("etl", concurrency_limit=3))
    assert backend.read_work_pool("etl") == pool
    assert [q.name for q in backend.list_work_queues("etl")] == ["default"]
    with pytest.raises(ConflictError, match="exists"):
        backend.create_work_pool(WorkPoolRecord("etl"))
    changed = backend.update_work_pool("etl", {"paused": True, "concurrency_limit": None})
    assert changed.paused and changed.concurrency_limit is None
    assert [p.name for p in backend.list_work_pools()] == ["etl"]
    backend.delete_work_pool("etl")
    with pytest.raises(NotFoundError, match="work pool 'etl' not found"):
        backend.read_work_pool("etl")


def test_work_pool_bad_input(backend: Any) -> None:
    with pytest.raises(ValueError, match="type"):
        backend.create_work_pool(WorkPoolRecord("p", type="kubernetes"))
    with pytest.raises(ValueError, match="concurrency_limit"):
        backend.create_work_pool(WorkPoolRecord("p", concurrency_limit=-1))
    backend.create_work_pool(WorkPoolRecord("p"))
    with pytest.raises(ValueError, match="cannot change type"):
        backend.update_work_pool("p", {"type": "x"})
    with pytest.raises(NotFoundError):
        backend.update_work_pool("nope", {"paused": True})


def test_work_queues_by_priority(backend: Any) -> None:
    backend.create_work_pool(WorkPoolRecord("p"))
    backend.create_work_queue(WorkQueueRecord("p", "urgent", priority=0))
    backend.create_work_queue(WorkQueueRecord("p", "bulk", priority=5, concurrency_limit=2))
    assert [q.name for q in backend.list_work_queues("p")] == ["urgent", "default", "bulk"]
    assert backend.read_work_queue("p", "bulk").concurrency_limit == 2
    assert backend.update_work_queue("p", "bulk", {"priority": -1}).priority == -1
    with pytest.raises(ConflictError):
        backend.create_work_queue(WorkQueueRecord("p", "bulk"))
    with pytest.raises(ConflictError, match="default queue"):
        backend.delete_work_queue("p", "default")
    with pytest.raises(NotFoundError):
        backend.create_work_queue(WorkQueueRecord("nope", "q"))
    backend.delete_work_queue("p", "bulk")
    with pytest.raises(NotFoundError, match="p/bulk"):
        backend.read_work_queue("p", "bulk")


# -- deployments ---------------------------------------------------------------------------


def test_deploy_creates_pool_and_queue_and_reads_back(backend: Any) -> None:
    stored = backend.upsert_deployment(
        make_deployment(work_pool_name="fresh", work_queue_name="nightly", tags=["a"])
    )
    assert stored.full_name == "etl/daily"
    assert backend.read_deployment("etl/daily") == stored
    assert backend.read_deployment(stored.id) == stored
    assert [q.name for q in backend.list_work_queues("fresh")] == ["default", "nightly"]
    assert backend.read_flow("etl").name == "etl"
    assert [d.full_name for d in backend.list_deployments()] == ["etl/daily"]
    assert backend.list_deployments(work_pool_name="other") == []


def test_redeploy_updates_in_place_and_replaces_schedules(backend: Any) -> None:
    first = backend.upsert_deployment(make_deployment(schedules=[INTERVAL]))
    second = backend.upsert_deployment(make_deployment(schedules=[CRON], description="v2"))
    assert second.id == first.id
    assert second.created == first.created
    assert second.schedules == [CRON]
    assert backend.read_deployment("etl/daily").description == "v2"
    assert len(backend.list_deployments()) == 1


def test_redeploy_with_new_schedules_drops_upcoming_scheduled_runs(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment(schedules=[INTERVAL]))
    future = utcnow().replace(microsecond=0) + __import__("datetime").timedelta(hours=1)
    backend.create_scheduled_runs(dep.id, times=[future])
    manual = backend.create_flow_run_from_deployment(dep.id)
    backend.upsert_deployment(make_deployment(schedules=[]))
    remaining = backend.list_deployment_runs(dep.id)
    assert [r.id for r in remaining] == [manual.id]


def test_deployment_names_dashes_match_underscores(backend: Any) -> None:
    backend.upsert_deployment(make_deployment(flow_name="my_flow"))
    assert backend.read_deployment("my-flow/daily").flow_name == "my_flow"
    with pytest.raises(NotFoundError, match="deployment 'my_flow/weekly' not found"):
        backend.read_deployment("my_flow/weekly")


def test_bad_deployments_are_refused(backend: Any) -> None:
    with pytest.raises(ValueError, match="entrypoint"):
        backend.upsert_deployment(make_deployment(entrypoint="flows/etl.py"))
    with pytest.raises(ValueError, match="must not contain '/'"):
        backend.upsert_deployment(make_deployment(name="a/b"))
    with pytest.raises(ValueError, match="max_active_runs"):
        backend.upsert_deployment(make_deployment(max_active_runs=-2))
    with pytest.raises(ParameterValidationError, match="n: expected integer"):
        backend.upsert_deployment(make_deployment(parameters={"n": "many"}))
    # Scheduled runs use the defaults alone: they must be complete then.
    with pytest.raises(ParameterValidationError, match="n: missing required"):
        backend.upsert_deployment(make_deployment(parameters={}, schedules=[CRON]))
    backend.upsert_deployment(make_deployment(parameters={}))
    assert backend.list_deployments()[0].parameters == {}


def test_update_pause_and_delete_deployment(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment())
    paused = backend.update_deployment("etl/daily", {"paused": True, "max_active_runs": 2})
    assert paused.paused and paused.max_active_runs == 2
    with pytest.raises(ValueError, match="cannot change entrypoint"):
        backend.update_deployment("etl/daily", {"entrypoint": "x:y"})
    with pytest.raises(ParameterValidationError, match="n: expected integer"):
        backend.update_deployment("etl/daily", {"parameters": {"n": "x"}})
    with pytest.raises(ValueError, match="tags must be a list of text"):
        backend.update_deployment("etl/daily", {"tags": "nightly"})
    assert backend.update_deployment("etl/daily", {"parameters": {"n": 4}}).parameters == {"n": 4}
    waiting = backend.create_flow_run_from_deployment(dep.id)
    backend.delete_deployment("etl/daily")
    with pytest.raises(NotFoundError):
        backend.read_deployment(dep.id)
    run = backend.read_flow_run(waiting.id)
    assert run.state_type is StateType.CANCELLED
    assert "etl/daily was deleted" in (run.state_message or "")
    with pytest.raises(NotFoundError):
        backend.delete_deployment("etl/daily")


def test_pool_in_use_cannot_be_deleted(backend: Any) -> None:
    backend.upsert_deployment(make_deployment(work_pool_name="busy"))
    with pytest.raises(ConflictError, match="etl/daily"):
        backend.delete_work_pool("busy")


# -- runs of deployments --------------------------------------------------------------------


def test_run_from_deployment_is_scheduled_with_merged_parameters(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment(parameters={"n": 1}, tags=["d"]))
    run = backend.create_flow_run_from_deployment(
        "etl/daily", {"label": "y"}, tags=["extra"], scheduled_start_time=at(5)
    )
    assert run.state_type is StateType.SCHEDULED and run.state_name == "Scheduled"
    assert run.parameters == {"n": 1, "label": "y"}
    assert run.tags == ["d", "extra"]
    assert run.deployment_id == dep.id
    assert (run.work_pool_name, run.work_queue_name) == ("default", "default")
    assert run.scheduled_start_time == at(5)
    assert run.entrypoint == dep.entrypoint
    assert backend.read_flow_run(run.id) == run
    assert [s.name for s in backend.read_states(run.id)] == ["Scheduled"]


def test_idempotency_key_returns_the_same_run(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    first = backend.create_flow_run_from_deployment("etl/daily", idempotency_key="signal-7")
    again = backend.create_flow_run_from_deployment(
        "etl/daily", {"n": 9}, idempotency_key="signal-7"
    )
    assert again.id == first.id
    other = backend.create_flow_run_from_deployment("etl/daily", idempotency_key="signal-8")
    assert other.id != first.id
    assert len(backend.list_deployment_runs("etl/daily")) == 2


def test_bad_parameters_create_no_run(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    with pytest.raises(ParameterValidationError) as info:
        backend.create_flow_run_from_deployment("etl/daily", {"n": "ten", "colour": "red"})
    message = str(info.value)
    assert "n: expected integer, got string 'ten'" in message
    assert "colour: unknown parameter" in message
    assert backend.list_deployment_runs("etl/daily") == []
    assert backend.list_flow_runs(FlowRunFilter()) == []


def test_job_variables_are_kept_with_the_run(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment())
    variables = {"env": {"STAGE": "test", "DROP": None}, "working_dir": "/srv", "image": "x:1"}
    run = backend.create_flow_run_from_deployment(dep.id, job_variables=variables)
    assert run.job_variables == variables
    # The engine's snapshots of the run do not carry them: they stay as created.
    engine_view = dataclasses.replace(run, job_variables={})
    state = Running()
    engine_view.apply(state)
    backend.write_flow_run(engine_view, StateRecord.from_state(run.id, "flow", state))
    backend.flush()
    assert backend.read_flow_run(run.id).job_variables == variables
    assert backend.list_deployment_runs(dep.id)[0].job_variables == variables
    plain = backend.create_flow_run_from_deployment(dep.id)
    assert backend.read_flow_run(plain.id).job_variables == {}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"env": ["A=1"]}, "env must be a mapping"),
        ({"env": {"A": 1}}, r"env\['A'\] must be text"),
        ({"env": {"A=B": "1"}}, "not an environment variable name"),
        ({"working_dir": 3}, "working_dir must be a directory path"),
    ],
)
def test_bad_job_variables_create_no_run(backend: Any, variables: Any, message: str) -> None:
    backend.upsert_deployment(make_deployment())
    with pytest.raises(ValueError, match=message):
        backend.create_flow_run_from_deployment("etl/daily", job_variables=variables)
    assert backend.list_deployment_runs("etl/daily") == []


def test_unknown_deployment(backend: Any) -> None:
    with pytest.raises(NotFoundError, match="deployment 'etl/nope' not found"):
        backend.create_flow_run_from_deployment("etl/nope")


def test_scheduled_runs_are_idempotent_and_skips_are_recorded(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment())
    ticks = [at(60 * i) for i in range(3)]
    assert backend.create_scheduled_runs(dep.id, times=ticks, planned_until=at(180)) == 3
    assert backend.create_scheduled_runs(dep.id, times=ticks, planned_until=at(120)) == 0
    assert backend.read_deployment(dep.id).planned_until == at(180)  # never moves back
    skipped = backend.create_scheduled_runs(dep.id, times=[], skipped=[(at(-60), "missed")])
    assert skipped == 1
    runs = backend.list_deployment_runs(dep.id)
    assert [r.scheduled_start_time for r in runs] == [at(-60), *ticks]
    assert [r.idempotency_key for r in runs][1] == scheduled_key(ticks[0])
    assert (runs[0].state_type, runs[0].state_name) == (StateType.CANCELLED, "Skipped")
    assert runs[0].state_message == "missed"
    # A tick that has a run (even a skipped one) gets no second run.
    assert backend.create_scheduled_runs(dep.id, times=[at(-60)]) == 0


def test_engine_snapshots_keep_the_deployment_columns(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment())
    run = backend.create_flow_run_from_deployment(dep.id, scheduled_start_time=at(3))
    # The engine writes the run as it knows it: a record without deployment fields.
    engine_view = dataclasses.replace(
        run,
        deployment_id=None,
        work_pool_name=None,
        work_queue_name=None,
        scheduled_start_time=None,
        idempotency_key=None,
    )
    state = Failed(message="boom")
    engine_view.apply(state)
    backend.write_flow_run(engine_view, StateRecord.from_state(run.id, "flow", state))
    backend.flush()
    stored = backend.read_flow_run(run.id)
    assert stored.state_type is StateType.FAILED
    assert stored.deployment_id == dep.id
    assert stored.scheduled_start_time == at(3)
    assert stored.work_pool_name == "default"


# -- claims -------------------------------------------------------------------------------


def _runs(backend: Any, key: str, count: int, start: float = 0.0) -> list[FlowRunRecord]:
    return [
        backend.create_flow_run_from_deployment(key, scheduled_start_time=at(start + i))
        for i in range(count)
    ]


def test_claim_takes_due_runs_in_order_once(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    runs = _runs(backend, "etl/daily", 3)
    future = backend.create_flow_run_from_deployment("etl/daily", scheduled_start_time=at(100))
    claimed = backend.claim_flow_runs("default", worker_name="w1", limit=2, now=at(10))
    assert [r.id for r in claimed] == [runs[0].id, runs[1].id]
    assert all(r.state_type is StateType.PENDING and r.worker_name == "w1" for r in claimed)
    rest = backend.claim_flow_runs("default", worker_name="w2", limit=10, now=at(10))
    assert [r.id for r in rest] == [runs[2].id]
    assert backend.claim_flow_runs("default", worker_name="w2", limit=10, now=at(10)) == []
    last = backend.claim_flow_runs("default", worker_name="w2", limit=1, now=at(100))
    assert [r.id for r in last] == [future.id]
    states = [s.name for s in backend.read_states(runs[0].id)]
    assert states == ["Scheduled", "Pending"]


def test_claim_unknown_pool_or_queue(backend: Any) -> None:
    with pytest.raises(NotFoundError, match="work pool 'nope'"):
        backend.claim_flow_runs("nope", worker_name="w", limit=1, now=NOW)
    backend.create_work_pool(WorkPoolRecord("p"))
    with pytest.raises(NotFoundError, match="p/q"):
        backend.claim_flow_runs("p", worker_name="w", limit=1, now=NOW, queues=["q"])


def test_claim_by_queue_priority(backend: Any) -> None:
    backend.create_work_pool(WorkPoolRecord("p"))
    backend.create_work_queue(WorkQueueRecord("p", "urgent", priority=0))
    backend.upsert_deployment(make_deployment("bulk", work_pool_name="p"))
    backend.upsert_deployment(make_deployment("hot", work_pool_name="p", work_queue_name="urgent"))
    old_bulk = _runs(backend, "etl/bulk", 2)
    new_hot = _runs(backend, "etl/hot", 1, start=5)
    claimed = backend.claim_flow_runs("p", worker_name="w", limit=2, now=at(10))
    assert [r.id for r in claimed] == [new_hot[0].id, old_bulk[0].id]
    only = backend.claim_flow_runs("p", worker_name="w", limit=5, now=at(10), queues=["urgent"])
    assert only == []


def test_paused_pool_queue_and_deployment_give_nothing(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    _runs(backend, "etl/daily", 2)
    backend.update_work_pool("default", {"paused": True})
    assert backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10)) == []
    backend.update_work_pool("default", {"paused": False})
    backend.update_work_queue("default", "default", {"paused": True})
    assert backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10)) == []
    backend.update_work_queue("default", "default", {"paused": False})
    backend.update_deployment("etl/daily", {"paused": True})
    assert backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10)) == []
    backend.update_deployment("etl/daily", {"paused": False})
    assert len(backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10))) == 2


@pytest.mark.parametrize(
    ("where", "changes"),
    [
        ("pool", {"concurrency_limit": 2}),
        ("queue", {"concurrency_limit": 2}),
        ("deployment", {"concurrency_limit": 2}),
        ("deployment", {"max_active_runs": 2}),
    ],
)
def test_claims_honour_limits(backend: Any, where: str, changes: dict[str, Any]) -> None:
    dep = backend.upsert_deployment(make_deployment())
    {
        "pool": lambda: backend.update_work_pool("default", changes),
        "queue": lambda: backend.update_work_queue("default", "default", changes),
        "deployment": lambda: backend.update_deployment(dep.id, changes),
    }[where]()
    _runs(backend, dep.id, 5)
    first = backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10))
    assert len(first) == 2
    assert backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10)) == []
    # A finished run frees its slot.
    done = dataclasses.replace(first[0])
    done.apply(Failed())
    backend.write_flow_run(done)
    backend.flush()
    assert len(backend.claim_flow_runs("default", worker_name="w", limit=5, now=at(10))) == 1


def test_deployment_limit_does_not_block_other_deployments(backend: Any) -> None:
    backend.upsert_deployment(make_deployment("solo", concurrency_limit=1))
    backend.upsert_deployment(make_deployment("free"))
    _runs(backend, "etl/solo", 3)
    free = _runs(backend, "etl/free", 2, start=5)
    claimed = backend.claim_flow_runs("default", worker_name="w", limit=10, now=at(10))
    assert len(claimed) == 3
    assert {r.id for r in free} <= {r.id for r in claimed}


def test_claim_by_deployment_ids_without_pool(backend: Any) -> None:
    one = backend.upsert_deployment(make_deployment("one", work_pool_name="a"))
    backend.upsert_deployment(make_deployment("two", work_pool_name="b"))
    mine = _runs(backend, one.id, 2)
    _runs(backend, "etl/two", 2)
    claimed = backend.claim_flow_runs(
        None, worker_name="serve", limit=10, now=at(10), deployment_ids=[one.id]
    )
    assert [r.id for r in claimed] == [r.id for r in mine]


def test_runs_waiting_for_an_in_process_retry_are_not_claimed(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment())
    run = backend.create_flow_run_from_deployment(dep.id, scheduled_start_time=at(0))
    claimed = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(10))
    assert [r.id for r in claimed] == [run.id]
    from sluice.states import AwaitingRetry

    retrying = claimed[0]
    retrying.apply(AwaitingRetry())
    backend.write_flow_run(retrying)
    backend.flush()
    assert backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(10)) == []


def test_release_hands_runs_back(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    _runs(backend, "etl/daily", 2)
    claimed = backend.claim_flow_runs("default", worker_name="w1", limit=2, now=at(10))
    ids = [r.id for r in claimed]
    assert backend.release_flow_runs(ids, worker_name="other") == []
    assert sorted(backend.release_flow_runs(ids, worker_name="w1")) == sorted(ids)
    assert backend.read_flow_run(ids[0]).state_name == "Scheduled"
    again = backend.claim_flow_runs("default", worker_name="w2", limit=5, now=at(10))
    assert [r.id for r in again] == ids


# -- resume, late, max_active_runs ----------------------------------------------------------


def test_resume_queues_a_failed_deployment_run(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    run = backend.create_flow_run_from_deployment("etl/daily", scheduled_start_time=at(0))
    with pytest.raises(ConflictError, match="only Failed, Crashed or Cancelled"):
        backend.resume_flow_run(run.id)
    claimed = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(1))[0]
    claimed.apply(Failed(message="boom"))
    backend.write_flow_run(claimed)
    backend.flush()
    resumed = backend.resume_flow_run(run.id[:13])
    assert (resumed.state_type, resumed.state_name) == (StateType.SCHEDULED, "AwaitingResume")
    assert resumed.end_time is None
    again = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(2))
    assert [r.id for r in again] == [run.id]


def test_resume_refuses_runs_without_deployment(backend: Any) -> None:
    run = FlowRunRecord(id=new_id(), flow_name="etl", name="adhoc")
    run.apply(Failed())
    backend.write_flow_run(run)
    backend.flush()
    with pytest.raises(ConflictError, match=f"sluice flow-run resume {run.id}"):
        backend.resume_flow_run(run.id)
    with pytest.raises(NotFoundError):
        backend.resume_flow_run("ffffffff-nope")


def _failed_run_with_tasks(backend: Any, *task_names: str) -> FlowRunRecord:
    """A failed run of etl/daily that ran ``task_names`` (call indexes counted per name)."""
    from sluice.schemas import TaskRunRecord

    backend.upsert_deployment(make_deployment())
    run = backend.create_flow_run_from_deployment("etl/daily", scheduled_start_time=at(0))
    claimed = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(1))[0]
    calls: dict[str, int] = {}
    for name in task_names:
        index = calls[name] = calls.get(name, -1) + 1
        task = TaskRunRecord(new_id(), name, f"{name}-{index}", run.id, call_index=index)
        task.apply(Completed())
        backend.write_task_run(task)
    claimed.apply(Failed(message="boom"))
    backend.write_flow_run(claimed)
    backend.flush()
    return claimed


def test_resume_from_a_task_keeps_the_task_in_the_awaiting_resume_state(backend: Any) -> None:
    run = _failed_run_with_tasks(backend, "load", "<b>x:y</b>", "load")
    resumed = backend.resume_flow_run(run.id, from_task="<b>x:y</b>:0")
    assert (resumed.state_type, resumed.state_name) == (StateType.SCHEDULED, "AwaitingResume")
    last = backend.read_states(run.id)[-1]
    assert last.name == "AwaitingResume" and last.details == {"from_task": "<b>x:y</b>:0"}
    assert "from task '<b>x:y</b>:0'" in (last.message or "")
    # Claimed (Pending) and handed back (Scheduled): the request is still the pending one.
    from sluice.resume_from import pending_from_task

    claimed = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(2))
    assert [r.id for r in claimed] == [run.id]
    assert backend.release_flow_runs([run.id], worker_name="w") == [run.id]
    assert pending_from_task(backend.read_states(run.id)) == "<b>x:y</b>:0"
    again = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(3))[0]
    again.apply(Running())
    backend.write_flow_run(again)
    again.apply(Failed())
    backend.write_flow_run(again)
    backend.flush()
    # A later plain resume carries no task; a name alone (every call) is accepted too.
    backend.resume_flow_run(run.id)
    assert backend.read_states(run.id)[-1].details is None
    assert pending_from_task(backend.read_states(run.id)) is None


def test_resume_from_a_task_by_name_alone(backend: Any) -> None:
    run = _failed_run_with_tasks(backend, "load", "load")
    backend.resume_flow_run(run.id, from_task="load")
    assert backend.read_states(run.id)[-1].details == {"from_task": "load"}


def test_resume_from_refuses_bad_or_unknown_tasks(backend: Any) -> None:
    run = _failed_run_with_tasks(backend, "load", "load")
    for bad in ["load:x", "load:-1", ":0", "", "load:" + "9" * 19, "lo\x00ad"]:
        with pytest.raises(ValueError, match=r"^from_task: "):
            backend.resume_flow_run(run.id, from_task=bad)
    with pytest.raises(ValueError, match="never ran a task named 'publish'"):
        backend.resume_flow_run(run.id, from_task="publish")
    with pytest.raises(ValueError, match="never made call 2 of task 'load'"):
        backend.resume_flow_run(run.id, from_task="load:2")
    assert backend.read_flow_run(run.id).state_name == "Failed"  # nothing was queued
    backend.resume_flow_run(run.id, from_task="load:1")
    with pytest.raises(ConflictError, match="only Failed, Crashed or Cancelled"):
        backend.resume_flow_run(run.id, from_task="load:1")  # not resumable wins: 409
    with pytest.raises(NotFoundError):
        backend.resume_flow_run("ffffffff-nope", from_task="load")


def test_late_runs(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment())
    now = utcnow()
    import datetime as dt

    backend.create_scheduled_runs(
        dep.id, times=[now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)]
    )
    # Created just now: not late yet, whatever its scheduled time.
    assert backend.mark_late_runs(grace=60, now=now) == []
    later = now + dt.timedelta(minutes=5)
    marked = backend.mark_late_runs(grace=60, now=later)
    assert len(marked) == 1
    assert backend.mark_late_runs(grace=60, now=later) == []
    run = backend.read_flow_run(marked[0])
    assert run.state_name == "Late" and run.state_type is StateType.SCHEDULED
    claimed = backend.claim_flow_runs("default", worker_name="w", limit=5, now=later)
    assert [r.id for r in claimed] == marked


def test_max_active_runs_skips_piled_up_ticks(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment(max_active_runs=1))
    backend.create_scheduled_runs(dep.id, times=[at(0)])
    running = backend.claim_flow_runs("default", worker_name="w", limit=1, now=at(1))
    assert len(running) == 1
    backend.create_scheduled_runs(dep.id, times=[at(60), at(120), at(180)])
    backend.create_flow_run_from_deployment(dep.id, scheduled_start_time=at(60))  # manual
    skipped = backend.skip_runs_over_max_active(now=at(150))
    all_runs = backend.list_deployment_runs(dep.id)
    runs = {r.scheduled_start_time: r for r in all_runs if r.idempotency_key}
    manual = [r for r in all_runs if not r.idempotency_key]
    assert manual[0].state_name == "Scheduled"  # runs triggered by hand are never skipped
    assert {runs[at(60)].state_name, runs[at(120)].state_name} == {"Skipped"}
    assert len(skipped) == 2
    assert runs[at(180)].state_name == "Scheduled"  # not due yet
    assert "max_active_runs" in (runs[at(60)].state_message or "")


# -- workers ----------------------------------------------------------------------------------


def test_worker_heartbeats(backend: Any) -> None:
    import datetime as dt

    now = utcnow()
    backend.create_work_pool(WorkPoolRecord("p"))
    backend.worker_heartbeat("p", "w1", pid=11, now=now - dt.timedelta(seconds=10))
    # Older than any heartbeat timeout (test servers push theirs out to ten years).
    backend.worker_heartbeat("p", "w2", now=now - dt.timedelta(days=365 * 20))
    backend.worker_heartbeat("p", "w1", pid=11, now=now)
    workers = backend.list_workers("p")
    assert [w.name for w in workers] == ["w1", "w2"]
    assert workers[0].last_heartbeat == now and workers[0].pid == 11
    # Silent past the heartbeat timeout without saying it stopped: OFFLINE.
    assert [w.status for w in workers] == ["ONLINE", "OFFLINE"]
    assert workers[0].is_online() and not workers[1].is_online()
    stopped = backend.worker_heartbeat("p", "w1", status="STOPPED", now=now)
    assert not stopped.is_online()
    with pytest.raises(NotFoundError):
        backend.worker_heartbeat("nope", "w")
    with pytest.raises(ValueError, match="ONLINE or STOPPED"):
        backend.worker_heartbeat("p", "w", status="BUSY")


def test_runs_of_silent_workers_are_handed_back(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    _runs(backend, "etl/daily", 2)
    now = utcnow()
    import datetime as dt

    backend.worker_heartbeat("default", "alive", now=now)
    backend.worker_heartbeat("default", "dead", now=now - dt.timedelta(minutes=10))
    kept = backend.claim_flow_runs("default", worker_name="alive", limit=1, now=now)
    lost = backend.claim_flow_runs("default", worker_name="dead", limit=1, now=now)
    # Just claimed: not orphaned yet, whatever the worker.
    assert backend.requeue_orphaned_runs(timeout=60, now=now) == []
    later = now + dt.timedelta(minutes=2)
    backend.worker_heartbeat("default", "alive", now=later)
    assert backend.requeue_orphaned_runs(timeout=60, now=later) == [lost[0].id]
    back = backend.read_flow_run(lost[0].id)
    assert back.state_name == "Scheduled" and "worker dead" in (back.state_message or "")
    assert backend.read_flow_run(kept[0].id).state_type is StateType.PENDING
    again = backend.claim_flow_runs("default", worker_name="alive", limit=5, now=later)
    assert [r.id for r in again] == [lost[0].id]


def test_concurrent_first_deploys_make_one_deployment(backend: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        stored = list(pool.map(lambda i: backend.upsert_deployment(make_deployment()), range(8)))
    assert len({d.id for d in stored}) == 1
    assert len(backend.list_deployments()) == 1


def test_concurrent_pool_creation_is_one_success_and_conflicts(backend: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(_: int) -> str:
        try:
            backend.create_work_pool(WorkPoolRecord("busy"))
        except ConflictError:
            return "conflict"
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(create, range(8)))
    assert outcomes == ["conflict"] * 7 + ["created"]


def test_cancel_a_run_not_started_a_running_one_and_a_finished_one(backend: Any) -> None:
    backend.upsert_deployment(make_deployment())
    waiting = backend.create_flow_run_from_deployment("etl/daily", scheduled_start_time=at(0))
    cancelled = backend.cancel_flow_run(waiting.id[:13])
    assert cancelled.state_type is StateType.CANCELLED
    assert backend.read_flow_run(waiting.id).state_type is StateType.CANCELLED

    running = FlowRunRecord(id=new_id(), flow_name="etl", name="adhoc")
    running.apply(Running())
    backend.write_flow_run(running)
    backend.flush()
    assert backend.cancel_flow_run(running.id).state_type is StateType.CANCELLING

    assert backend.cancel_flow_run(waiting.id).state_type is StateType.CANCELLED  # unchanged
    finished = FlowRunRecord(id=new_id(), flow_name="etl", name="done")
    finished.apply(Completed())
    backend.write_flow_run(finished)
    backend.flush()
    with pytest.raises(ConflictError, match="refused"):
        backend.cancel_flow_run(finished.id)
    with pytest.raises(NotFoundError):
        backend.cancel_flow_run("ffffffff-nope")


def test_update_schedules_alone_keeps_other_changes_and_replans(backend: Any) -> None:
    dep = backend.upsert_deployment(make_deployment(schedules=[INTERVAL]))
    future = utcnow().replace(microsecond=0) + __import__("datetime").timedelta(hours=1)
    backend.create_scheduled_runs(dep.id, times=[future])
    manual = backend.create_flow_run_from_deployment(dep.id)
    # Another client limits the deployment meanwhile: a schedules update keeps that.
    backend.update_deployment(dep.id, {"max_active_runs": 3})
    updated = backend.update_deployment(dep.id, {"schedules": [CRON]})
    assert updated.schedules == [CRON] and updated.max_active_runs == 3
    assert updated.planned_until is None
    # The old schedule's upcoming run went; the manual one stays.
    assert [r.id for r in backend.list_deployment_runs(dep.id)] == [manual.id]
    # The same schedules again change nothing else.
    backend.create_scheduled_runs(dep.id, times=[future])
    backend.update_deployment(dep.id, {"schedules": [CRON]})
    assert len(backend.list_deployment_runs(dep.id)) == 2


def test_update_schedules_refuses_bad_ones_and_incomplete_defaults(backend: Any) -> None:
    backend.upsert_deployment(make_deployment(parameters={}, schedules=[]))
    with pytest.raises(ValueError, match="cron"):
        backend.update_deployment(
            "etl/daily", {"schedules": [{"kind": "cron", "cron": "61 * * * *"}]}
        )
    with pytest.raises(ValueError, match="schedules must be a list"):
        backend.update_deployment("etl/daily", {"schedules": "0 * * * *"})
    # Scheduled runs take the defaults alone: they must be complete first.
    with pytest.raises(ParameterValidationError, match="n: missing required"):
        backend.update_deployment("etl/daily", {"schedules": [CRON]})
    assert backend.read_deployment("etl/daily").schedules == []
    done = backend.update_deployment("etl/daily", {"schedules": [CRON], "parameters": {"n": 2}})
    assert done.schedules == [CRON] and done.parameters == {"n": 2}


# -- schedules with their own parameters (sluice.schedules, as in Prefect) -----------------


def _cron(expression: str, **options: Any) -> dict[str, Any]:
    return {"kind": "cron", "cron": expression, "timezone": "UTC", "day_or": True, **options}


def test_schedules_with_their_own_parameters_make_their_own_runs(backend: Any) -> None:
    six = at(0).replace(hour=6, minute=0)
    schedules = [
        _cron("0 6 * * *", parameters={"n": 2, "label": "a"}, slug="a"),
        _cron("0 6 * * *", parameters={"n": 3}),
        _cron("0 6 * * *"),  # the deployment's defaults
        _cron("0 6 * * *", parameters={"n": 4}, active=False),
    ]
    dep = backend.upsert_deployment(make_deployment(parameters={"n": 1}, schedules=schedules))
    assert dep.schedules == schedules
    assert backend.create_scheduled_runs(dep.id, times=[six]) == 3
    assert backend.create_scheduled_runs(dep.id, times=[six]) == 0  # still one run per schedule
    runs = backend.list_deployment_runs(dep.id)
    assert sorted(r.parameters["n"] for r in runs) == [1, 2, 3]
    assert {r.parameters.get("label") for r in runs} == {"a", None}
    keys = {r.parameters["n"]: r.idempotency_key for r in runs}
    assert keys[1] == scheduled_key(six)
    assert keys[2].startswith(scheduled_key(six) + "#") and keys[2] != keys[3]
    # A time none of them ticks at (a backfill of another schedule): the defaults.
    assert backend.create_scheduled_runs(dep.id, times=[six.replace(hour=7)]) == 1


def test_each_schedule_may_supply_a_required_parameter(backend: Any) -> None:
    with_n = [_cron("0 6 * * *", parameters={"n": 5}), _cron("0 7 * * *", parameters={"n": 6})]
    dep = backend.upsert_deployment(make_deployment(parameters={}, schedules=with_n))
    assert [s["parameters"] for s in dep.schedules] == [{"n": 5}, {"n": 6}]
    with pytest.raises(ParameterValidationError, match="n: missing required"):
        backend.update_deployment(dep.id, {"schedules": [*with_n, _cron("0 8 * * *")]})
    with pytest.raises(ParameterValidationError, match="n: expected integer"):
        backend.update_deployment(
            dep.id, {"schedules": [_cron("0 8 * * *", parameters={"n": "x"})]}
        )
    with pytest.raises(ValueError, match="slug 'same'"):
        backend.update_deployment(
            dep.id,
            {"schedules": [_cron("0 6 * * *", slug="same"), _cron("0 7 * * *", slug="same")]},
        )
    assert backend.read_deployment(dep.id).schedules == with_n


# -- refusals are the same errors on every backend (over HTTP: rebuilt by type) -------------


def test_bad_schedules_are_refused_by_every_backend_as_schedule_errors(backend: Any) -> None:
    # The embedded store used to keep what it was given; only the server checked.
    with pytest.raises(ScheduleError, match="schedule kind 'weekly'"):
        backend.upsert_deployment(make_deployment(schedules=[{"kind": "weekly"}]))
    with pytest.raises(NotFoundError):
        backend.read_deployment("etl/daily")
    # Given in another accepted form, a schedule is stored in its canonical one.
    stored = backend.upsert_deployment(make_deployment(schedules=[{"cron": "0 6 * * *"}]))
    assert stored.schedules == [CRON]


def test_refusals_name_the_argument_they_refuse(backend: Any) -> None:
    run = _failed_run_with_tasks(backend, "load")
    with pytest.raises(InvalidInputError) as unknown_task:
        backend.resume_flow_run(run.id, from_task="publish")
    assert unknown_task.value.field == "from_task"
    with pytest.raises(InvalidInputError) as bad_timeout:
        backend.mark_lapsed_runs_crashed(-1)
    assert bad_timeout.value.field == "timeout"
    with pytest.raises(InvalidInputError) as bad_grace:
        backend.mark_late_runs(grace=-5)
    assert bad_grace.value.field == "grace"
    backend.create_work_pool(WorkPoolRecord("p"))
    with pytest.raises(InvalidInputError) as bad_status:
        backend.worker_heartbeat("p", "w", status="SLEEPING")
    assert bad_status.value.field == "status"
