"""The Backend contract: one suite, run against every backend implementation.

The embedded store on SQLite, and on PostgreSQL when ``SLUICE_TEST_PG_URL``
points at a server (a fresh database is created for the session and dropped
afterwards); and the HTTP client backend talking to a real Sluice server on
127.0.0.1 (one server process per session, its SQLite store emptied before
each test).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.protocol import Backend
from sluice.errors import AmbiguousIdError, NotFoundError
from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
    new_id,
)
from sluice.settings import Settings, StoreSettings
from sluice.states import Completed, Failed, Pending, Running, StateType, utcnow
from sluice.store.declarations import BATCHED, columns_of
from tests.pg_databases import pg_database, postgresql_param
from tests.record_samples import sample

# Read at import: the autouse fixture in conftest.py clears SLUICE_* per test.
PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
BACKENDS = ["sqlite", postgresql_param(), "http"]

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A PostgreSQL database created for this test session, dropped at its end."""
    with pg_database() as url:
        yield url


def _empty_tables(backend: Backend) -> None:
    from sluice.store.database import write_connection
    from sluice.store.schema import metadata

    with write_connection(backend.engine) as conn:  # type: ignore[attr-defined]
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty backend of each kind."""
    from sluice.backend.local import LocalBackend

    store = StoreSettings(flush_interval=0.05, lock_timeout=10.0)
    instance: Backend
    if request.param == "sqlite":
        instance = LocalBackend(Settings(home=tmp_path / "home", store=store))
    elif request.param == "postgresql":
        url = request.getfixturevalue("pg_database_url")
        instance = LocalBackend(Settings(home=tmp_path / "home", database_url=url, store=store))
        _empty_tables(instance)
    else:
        from sluice.backend.http import HttpBackend

        server = request.getfixturevalue("api_server")
        # The server's own home: tests that open a second, embedded backend
        # with ``backend.settings`` write into the database the server serves.
        settings = Settings(
            home=server.home, api_url=server.url, store=store, api_retry_timeout=10.0
        )
        store_side = LocalBackend(settings)
        try:
            _empty_tables(store_side)
        finally:
            store_side.close()
        instance = HttpBackend(settings)
    yield instance
    instance.close()


def make_flow_run(flow_name: str = "etl", created: float = 0.0, **kw: object) -> FlowRunRecord:
    return FlowRunRecord(
        id=str(kw.pop("id", new_id())),
        flow_name=flow_name,
        name=str(kw.pop("name", f"run-{created}")),
        created=at(created),
        updated=at(created),
        **kw,  # type: ignore[arg-type]
    )


def make_task_run(flow_run_id: str | None, created: float = 0.0, **kw: object) -> TaskRunRecord:
    return TaskRunRecord(
        id=str(kw.pop("id", new_id())),
        task_name=str(kw.pop("task_name", "extract")),
        name=str(kw.pop("name", f"extract-{created}")),
        flow_run_id=flow_run_id,
        created=at(created),
        updated=at(created),
        **kw,  # type: ignore[arg-type]
    )


# -- shape -------------------------------------------------------------------------


def test_backend_satisfies_the_protocol(backend: Backend) -> None:
    assert isinstance(backend, Backend)


# -- flows ---------------------------------------------------------------------------


def test_flow_round_trip(backend: Backend) -> None:
    flow = FlowRecord(name="etl", description="Extract, load", version="1.2", created=at(1))
    backend.write_flow(flow)
    assert backend.read_flow("etl") == flow


def test_a_known_flow_is_kept(backend: Backend) -> None:
    first = FlowRecord(name="etl", version="1", created=at(1))
    backend.write_flow(first)
    backend.flush()
    backend.write_flow(FlowRecord(name="etl", version="2", created=at(2)))
    backend.write_flow(FlowRecord(name="etl", version="3", created=at(3)))
    backend.write_flow(first)  # registered again by a later run of the same process
    assert backend.read_flow("etl") == first
    assert len(backend.list_flows()) == 1


def test_flow_name_matches_with_dashes_or_underscores(backend: Backend) -> None:
    backend.write_flow(FlowRecord(name="my_flow", created=at(1)))
    backend.write_flow(FlowRecord(name="other-flow", created=at(2)))
    assert backend.read_flow("my-flow").name == "my_flow"
    assert backend.read_flow("my_flow").name == "my_flow"
    assert backend.read_flow("other_flow").name == "other-flow"


def test_unknown_flow_raises_not_found(backend: Backend) -> None:
    backend.write_flow(FlowRecord(name="etl"))
    with pytest.raises(NotFoundError, match="nope"):
        backend.read_flow("nope")


def test_list_flows_newest_first_with_limit(backend: Backend) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        backend.write_flow(FlowRecord(name=name, created=at(i)))
    assert [f.name for f in backend.list_flows()] == ["c", "b", "a"]
    assert [f.name for f in backend.list_flows(limit=2)] == ["c", "b"]


# -- flow runs -----------------------------------------------------------------------


def test_flow_run_round_trip_keeps_every_field(backend: Backend) -> None:
    run = make_flow_run(
        parameters={"n": 3, "nested": {"xs": [1, 2.5, None], "s": "é"}},
        tags=["nightly", "prod"],
        state_type=StateType.COMPLETED,
        state_name="Completed",
        state_message="all good",
        run_count=2,
        start_time=at(1),
        end_time=at(2.000001),
        # heartbeat: only a heartbeat sets it, with the store's clock
        parent_flow_run_id=new_id(),
        parent_task_run_id=new_id(),
        flow_version="abc123",
        hostname="node-1",
        pid=4242,
        result='{"value": 42}',
        entrypoint="flows/etl.py:etl",
        parameters_ref="params/0190aa.pickle",
        attempt=3,
        host_id="boot-id/pid:[4026531836]",
        pid_started=2**40,
    )
    backend.write_flow_run(run)
    assert backend.read_flow_run(run.id) == run


def test_flow_run_upsert_keeps_one_row_with_the_latest_values(backend: Backend) -> None:
    run = make_flow_run()
    for state in (Pending(timestamp=at(1)), Running(timestamp=at(2))):
        run.apply(state)
        backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", state))
    backend.flush()
    run.apply(Completed(timestamp=at(3)))
    run.run_count = 1
    backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", Completed(timestamp=at(3))))
    stored = backend.read_flow_run(run.id)
    assert stored == run
    assert stored.start_time == at(2) and stored.end_time == at(3)
    assert backend.count_flow_runs(FlowRunFilter()) == 1
    assert [s.name for s in backend.read_states(run.id)] == ["Pending", "Running", "Completed"]


def test_record_mutated_after_write_is_stored_as_it_was(backend: Backend) -> None:
    run = make_flow_run(tags=["a"], parameters={"x": [1]})
    backend.write_flow_run(run)
    run.tags.append("b")
    run.parameters["x"].append(2)
    task = make_task_run(run.id, tags=["t"])
    backend.write_task_run(task)
    task.tags.append("u")
    stored = backend.read_flow_run(run.id)
    assert stored.tags == ["a"] and stored.parameters == {"x": [1]}
    assert backend.read_task_run(task.id).tags == ["t"]


def test_unknown_flow_run_raises_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        backend.read_flow_run(new_id())


def test_flow_run_by_unique_id_prefix(backend: Backend) -> None:
    a = make_flow_run(id="aaaa1111-0000-4000-8000-000000000000")
    b = make_flow_run(id="aaaa2222-0000-4000-8000-000000000000")
    c = make_flow_run(id="bbbb1111-0000-4000-8000-000000000000")
    for run in (a, b, c):
        backend.write_flow_run(run)
    assert backend.read_flow_run("aaaa1").id == a.id
    assert backend.read_flow_run("b").id == c.id
    assert backend.read_flow_run(b.id).id == b.id
    with pytest.raises(AmbiguousIdError) as excinfo:
        backend.read_flow_run("aaaa")
    assert a.id in str(excinfo.value) and b.id in str(excinfo.value)
    assert isinstance(excinfo.value, NotFoundError)
    with pytest.raises(NotFoundError):
        backend.read_flow_run("cccc")
    with pytest.raises(NotFoundError):
        backend.read_flow_run("aaaa%")


# -- listing flow runs ----------------------------------------------------------------


@pytest.fixture
def many_runs(backend: Backend) -> list[FlowRunRecord]:
    """Ten runs of two flows, created one second apart, with states and tags."""
    runs = []
    for i in range(10):
        run = make_flow_run(
            flow_name="etl_daily" if i % 2 == 0 else "report",
            created=i,
            tags=["even"] if i % 2 == 0 else ["odd", "Prod"],
            start_time=at(i + 0.5) if i < 8 else None,
            state_type=StateType.FAILED if i % 3 == 0 else StateType.COMPLETED,
        )
        backend.write_flow_run(run)
        runs.append(run)
    backend.write_flow(FlowRecord(name="etl_daily"))
    return runs


def _ids(runs: list[FlowRunRecord]) -> list[str]:
    return [r.id for r in runs]


def test_list_flow_runs_newest_first(backend: Backend, many_runs: list[FlowRunRecord]) -> None:
    listed = backend.list_flow_runs(FlowRunFilter(limit=100))
    assert _ids(listed) == _ids(many_runs[::-1])
    assert listed[0] == many_runs[-1]


def test_list_flow_runs_pagination(backend: Backend, many_runs: list[FlowRunRecord]) -> None:
    newest_first = _ids(many_runs[::-1])
    page1 = backend.list_flow_runs(FlowRunFilter(limit=4))
    page2 = backend.list_flow_runs(FlowRunFilter(limit=4, offset=4))
    page3 = backend.list_flow_runs(FlowRunFilter(limit=4, offset=8))
    assert _ids(page1 + page2 + page3) == newest_first
    assert backend.count_flow_runs(FlowRunFilter(limit=4, offset=8)) == 10


def test_filter_by_flow_name_accepts_dashes(
    backend: Backend, many_runs: list[FlowRunRecord]
) -> None:
    expected = [r.id for r in many_runs[::-1] if r.flow_name == "etl_daily"]
    for name in ("etl_daily", "etl-daily"):
        flt = FlowRunFilter(flow_name=name, limit=100)
        assert _ids(backend.list_flow_runs(flt)) == expected
        assert backend.count_flow_runs(flt) == 5
    assert backend.list_flow_runs(FlowRunFilter(flow_name="etl")) == []


def test_filter_by_state_types(backend: Backend, many_runs: list[FlowRunRecord]) -> None:
    flt = FlowRunFilter(state_types=[StateType.FAILED], limit=100)
    assert _ids(backend.list_flow_runs(flt)) == [many_runs[i].id for i in (9, 6, 3, 0)]
    both = FlowRunFilter(state_types=[StateType.FAILED, StateType.COMPLETED])
    assert backend.count_flow_runs(both) == 10
    assert backend.count_flow_runs(FlowRunFilter(state_types=[StateType.RUNNING])) == 0


def test_filter_by_tags_requires_all_and_is_case_sensitive(
    backend: Backend, many_runs: list[FlowRunRecord]
) -> None:
    assert backend.count_flow_runs(FlowRunFilter(tags=["even"])) == 5
    assert backend.count_flow_runs(FlowRunFilter(tags=["odd", "Prod"])) == 5
    assert backend.count_flow_runs(FlowRunFilter(tags=["odd", "even"])) == 0
    assert backend.count_flow_runs(FlowRunFilter(tags=["prod"])) == 0
    assert backend.count_flow_runs(FlowRunFilter(tags=["od"])) == 0


def test_filter_by_time_range(backend: Backend, many_runs: list[FlowRunRecord]) -> None:
    # Runs 0-7 started at i + 0.5; runs 8 and 9 never started (placed by creation).
    flt = FlowRunFilter(started_after=at(2), started_before=at(5), limit=100)
    assert _ids(backend.list_flow_runs(flt)) == [many_runs[i].id for i in (4, 3, 2)]
    late = FlowRunFilter(started_after=at(7), limit=100)
    assert _ids(backend.list_flow_runs(late)) == [many_runs[i].id for i in (9, 8, 7)]


def test_filter_by_parent_and_combined(backend: Backend, many_runs: list[FlowRunRecord]) -> None:
    parent = many_runs[0]
    child = make_flow_run(flow_name="etl_daily", created=20, parent_flow_run_id=parent.id)
    backend.write_flow_run(child)
    assert _ids(backend.list_flow_runs(FlowRunFilter(parent_flow_run_id=parent.id))) == [child.id]
    flt = FlowRunFilter(flow_name="etl-daily", state_types=[StateType.FAILED], tags=["even"])
    assert _ids(backend.list_flow_runs(flt)) == [many_runs[6].id, many_runs[0].id]


# -- task runs and states ---------------------------------------------------------------


def test_task_run_round_trip_keeps_every_field(backend: Backend) -> None:
    run = make_task_run(
        new_id(),
        call_index=3,
        map_index=7,
        tags=["io"],
        upstream_ids=[new_id(), new_id()],
        state_type=StateType.FAILED,
        state_name="TimedOut",
        state_message="took too long",
        run_count=3,
        start_time=at(1),
        end_time=at(9),
        cache_key="k" * 64,
        result=None,
    )
    backend.write_task_run(run)
    assert backend.read_task_run(run.id) == run


def test_task_run_round_trip_of_cache_and_journal_fields(backend: Backend) -> None:
    run = make_task_run(
        new_id(),
        cache_key="key",
        cache_expiration=at(3600.000001),
        input_hash="sha256:" + "ab" * 32,
        result="results/0190aa.pickle",
    )
    backend.write_task_run(run)
    stored = backend.read_task_run(run.id)
    assert stored == run
    assert stored.cache_expiration == at(3600.000001)
    unset = make_task_run(new_id())
    backend.write_task_run(unset)
    stored = backend.read_task_run(unset.id)
    assert (stored.cache_expiration, stored.input_hash, stored.result) == (None, None, None)


def test_task_run_state_changes_coalesce_but_history_is_complete(backend: Backend) -> None:
    run = make_task_run(new_id())
    states = [Pending(timestamp=at(1)), Running(timestamp=at(2)), Failed(timestamp=at(3))]
    states.append(Running(name="Retrying", timestamp=at(4)))
    states.append(Completed(timestamp=at(5), message="done"))
    for state in states:
        run.apply(state)
        backend.write_task_run(run, StateRecord.from_state(run.id, "task", state))
    stored = backend.read_task_run(run.id)
    assert stored == run
    assert (stored.state_name, stored.start_time, stored.end_time) == ("Completed", at(2), at(5))
    history = backend.read_states(run.id)
    assert [(s.name, s.timestamp) for s in history] == [(s.name, s.timestamp) for s in states]
    assert history[-1] == StateRecord(
        run.id, "task", StateType.COMPLETED, "Completed", at(5), "done"
    )


def test_state_details_round_trip(backend: Backend) -> None:
    run_id = new_id()
    details = {"exception": "ValueError", "traceback": "line 1\nline 2", "retry_in": 2.5}
    record = StateRecord(run_id, "flow", StateType.FAILED, "Failed", at(1), "boom", details)
    backend.write_flow_run(make_flow_run(id=run_id), record)
    assert backend.read_states(run_id) == [record]
    assert backend.read_states(new_id()) == []


def _as_the_engine_writes_it(record: Any) -> Any:
    """``record`` as stored by the engine's writes: the columns they do not carry (set by
    the store's own operations, stamped by the store) at their defaults."""
    left = {
        spec.name: spec.default() if spec.default is not None else None
        for spec in columns_of(type(record))
        if spec.write not in BATCHED
    }
    return dataclasses.replace(record, **left)


def _write_and_read_flow(backend: Backend) -> tuple[Any, Any]:
    flow = sample(FlowRecord)
    backend.write_flow(flow)
    return flow, backend.read_flow(flow.name)


def _write_and_read_flow_run(backend: Backend) -> tuple[Any, Any]:
    run = sample(FlowRunRecord)
    backend.write_flow_run(run)
    return run, backend.read_flow_run(run.id)


def _write_and_read_task_run(backend: Backend) -> tuple[Any, Any]:
    run = sample(TaskRunRecord)
    backend.write_task_run(run)
    return run, backend.read_task_run(run.id)


def _write_and_read_state(backend: Backend) -> tuple[Any, Any]:
    run = make_task_run(None)
    state = sample(StateRecord, run_id=run.id)
    backend.write_task_run(run, state)
    (stored,) = backend.read_states(run.id)
    return state, stored


def _write_and_read_log(backend: Backend) -> tuple[Any, Any]:
    line = sample(LogRecord, level=20)
    backend.write_logs([line])
    (stored,) = backend.read_logs(line.flow_run_id)
    return line, stored


@pytest.mark.parametrize(
    "round_trip",
    [
        _write_and_read_flow,
        _write_and_read_flow_run,
        _write_and_read_task_run,
        _write_and_read_state,
        _write_and_read_log,
    ],
    ids=["flow", "flow run", "task run", "state", "log"],
)
def test_every_declared_field_of_a_record_round_trips(
    backend: Backend, round_trip: Callable[[Backend], tuple[Any, Any]]
) -> None:
    # Every field of the record's declaration, with a value unlike its default
    # (tests/record_samples.py): a field added to the declaration is covered
    # here without editing this test.
    written, stored = round_trip(backend)
    assert stored == _as_the_engine_writes_it(written)


def test_read_task_runs_in_creation_order(backend: Backend) -> None:
    flow_run = make_flow_run()
    other = make_flow_run()
    runs = [make_task_run(flow_run.id, created=i, call_index=i) for i in (3, 1, 2, 0)]
    for run in runs:
        backend.write_task_run(run)
    backend.write_task_run(make_task_run(other.id))
    listed = backend.read_task_runs(flow_run.id)
    assert [r.call_index for r in listed] == [0, 1, 2, 3]
    assert backend.read_task_runs(new_id()) == []


def test_task_run_by_id_prefix(backend: Backend) -> None:
    one = make_task_run(None, id="cafe0001-0000-4000-8000-000000000000")
    two = make_task_run(None, id="cafe0002-0000-4000-8000-000000000000")
    backend.write_task_run(one)
    backend.write_task_run(two)
    assert backend.read_task_run("cafe0002").id == two.id
    with pytest.raises(AmbiguousIdError):
        backend.read_task_run("cafe")
    with pytest.raises(NotFoundError):
        backend.read_task_run("dead")


# -- heartbeats ---------------------------------------------------------------------------


def test_heartbeat_is_stamped_with_the_stores_clock_and_moves_forward_only(
    backend: Backend,
) -> None:
    run = make_flow_run()
    backend.write_flow_run(run)
    before = utcnow() - dt.timedelta(seconds=5)
    # The sender's clock (far in the past or future) plays no part: one clock decides.
    backend.heartbeat(run.id, at(10))
    first = backend.read_flow_run(run.id).heartbeat
    assert first is not None and before <= first <= utcnow() + dt.timedelta(seconds=5)
    backend.heartbeat(run.id, at(10) + dt.timedelta(days=365))
    second = backend.read_flow_run(run.id).heartbeat
    assert second is not None and first <= second <= utcnow() + dt.timedelta(seconds=5)
    # A later snapshot of the run (which never carries the heartbeat) does not erase it.
    run.apply(Completed(timestamp=at(11)))
    run.heartbeat = at(99)
    backend.write_flow_run(run)
    stored = backend.read_flow_run(run.id)
    assert stored.heartbeat == second and stored.state_name == "Completed"


# -- logs ----------------------------------------------------------------------------------


def test_logs_paging_levels_and_task_filter(backend: Backend) -> None:
    flow_run_id, task_run_id = new_id(), new_id()
    logs = [
        LogRecord(flow_run_id, task_run_id if i % 2 else None, 10 * (i % 5), "app", f"m{i}", at(i))
        for i in range(20)
    ]
    backend.write_logs(logs[:10])
    backend.write_logs(logs[10:])
    backend.write_logs([LogRecord(new_id(), None, 20, "app", "other run", at(0))])
    assert backend.read_logs(flow_run_id) == logs
    assert backend.read_logs(flow_run_id, offset=5, limit=3) == logs[5:8]
    assert backend.read_logs(flow_run_id, offset=18) == logs[18:]
    assert backend.read_logs(flow_run_id, min_level=30) == [r for r in logs if r.level >= 30]
    only_task = backend.read_logs(flow_run_id, task_run_id=task_run_id)
    assert only_task == [r for r in logs if r.task_run_id == task_run_id]
    assert backend.read_logs(new_id()) == []


def test_reads_see_unflushed_writes(backend: Backend) -> None:
    run = make_flow_run()
    backend.write_flow_run(run)
    backend.write_task_run(make_task_run(run.id))
    backend.write_logs([LogRecord(run.id, None, 20, "app", "hello", at(0))])
    assert backend.read_flow_run(run.id).id == run.id
    assert len(backend.read_task_runs(run.id)) == 1
    assert [r.message for r in backend.read_logs(run.id)] == ["hello"]


def test_nul_characters_do_not_break_writes(backend: Backend) -> None:
    run = make_flow_run(state_message="bad\x00byte")
    backend.write_flow_run(run)
    backend.write_logs([LogRecord(run.id, None, 20, "app", "nul \x00 here", at(0))])
    # PostgreSQL text cannot hold NUL: it becomes U+FFFD there, and stays on SQLite.
    stored = backend.read_flow_run(run.id).state_message or ""
    assert stored.replace("\ufffd", "\x00") == "bad\x00byte"
    logged = backend.read_logs(run.id)[0].message
    assert logged.replace("\ufffd", "\x00") == "nul \x00 here"


# -- caching -------------------------------------------------------------------------------


def cached_run(key: str, ended: float, **kw: object) -> TaskRunRecord:
    kw.setdefault("state_type", StateType.COMPLETED)
    kw.setdefault("state_name", "Completed")
    kw.setdefault("result", f"results/{new_id()}")
    return make_task_run(new_id(), created=ended - 1, cache_key=key, end_time=at(ended), **kw)


def test_find_cached_task_run_hit(backend: Backend) -> None:
    hit = cached_run("k1", 10, cache_expiration=at(100), input_hash="h")
    backend.write_task_run(hit)
    backend.write_task_run(cached_run("other", 20))
    assert backend.find_cached_task_run("k1", at(50)) == hit
    assert backend.find_cached_task_run("k", at(50)) is None
    assert backend.find_cached_task_run("missing", at(50)) is None


def test_find_cached_task_run_skips_expired_unfinished_and_resultless(backend: Backend) -> None:
    backend.write_task_run(cached_run("k", 10, cache_expiration=at(50)))
    backend.write_task_run(cached_run("k", 11, result=None))
    for state in (StateType.FAILED, StateType.RUNNING, StateType.CRASHED):
        backend.write_task_run(cached_run("k", 12, state_type=state, state_name=state.value))
    assert backend.find_cached_task_run("k", at(49)) is not None
    # Expiration is exclusive: valid strictly before it.
    assert backend.find_cached_task_run("k", at(50)) is None
    assert backend.find_cached_task_run("k", at(60)) is None
    never = cached_run("k", 5)
    backend.write_task_run(never)
    assert backend.find_cached_task_run("k", at(10_000)) == never


def test_find_cached_task_run_newest_wins(backend: Backend) -> None:
    old = cached_run("k", 10)
    new = cached_run("k", 30, cache_expiration=at(1000))
    expired_newer = cached_run("k", 40, cache_expiration=at(45))
    for run in (new, expired_newer, old):
        backend.write_task_run(run)
    assert backend.find_cached_task_run("k", at(44)) == expired_newer
    assert backend.find_cached_task_run("k", at(50)) == new
    assert backend.find_cached_task_run("k", at(2000)) == old


def test_find_cached_task_run_sees_other_backends_writes(backend: Backend) -> None:
    from sluice.backend.local import LocalBackend

    other = LocalBackend(backend.settings)  # type: ignore[attr-defined]
    try:
        run = cached_run("shared", 10)
        other.write_task_run(run)
        other.flush()
        assert backend.find_cached_task_run("shared", at(20)) == run
    finally:
        other.close()


# -- the journal ---------------------------------------------------------------------------


def test_read_journal_returns_completed_runs_with_results(backend: Backend) -> None:
    flow_run, other = make_flow_run(), make_flow_run()
    done = [
        make_task_run(
            flow_run.id,
            created=i,
            call_index=i,
            map_index=i - 1,
            state_type=StateType.COMPLETED,
            state_name="Cached" if i == 2 else "Completed",
            input_hash=f"h{i}",
            result=f"results/{i}",
            cache_key="k" if i == 1 else None,
        )
        for i in (2, 0, 1)
    ]
    skipped = [
        make_task_run(flow_run.id, created=5, state_type=StateType.COMPLETED, result=None),
        make_task_run(flow_run.id, created=6, state_type=StateType.FAILED, result="results/x"),
        make_task_run(flow_run.id, created=7, state_type=StateType.RUNNING),
        make_task_run(other.id, created=8, state_type=StateType.COMPLETED, result="results/y"),
    ]
    for run in [*done, *skipped]:
        backend.write_task_run(run)
    journal = backend.read_journal(flow_run.id)
    assert journal == sorted(done, key=lambda r: r.created)
    assert [(r.task_key, r.input_hash) for r in journal] == [
        ("extract:0", "h0"),
        ("extract:1:0", "h1"),
        ("extract:2:1", "h2"),
    ]
    assert backend.read_journal(new_id()) == []


# -- crash detection -----------------------------------------------------------------------


def running_flow_run(created: float, **kw: object) -> FlowRunRecord:
    run = make_flow_run(created=created, **kw)
    run.apply(Running(timestamp=at(created)))
    return run


def test_mark_lapsed_runs_crashed(backend: Backend) -> None:
    silent = running_flow_run(0)  # started long ago, never beat
    never_beat = running_flow_run(5)
    fresh = running_flow_run(0)
    finished = make_flow_run(created=0, state_type=StateType.COMPLETED, state_name="Completed")
    pending = make_flow_run(created=0)
    for run in (silent, never_beat, fresh, finished, pending):
        backend.write_flow_run(run)
    # Stamped with the store's clock, whatever time the sender says it is.
    backend.heartbeat(fresh.id, at(1))
    tasks = {
        "running": make_task_run(silent.id, created=1, state_type=StateType.RUNNING),
        "pending": make_task_run(silent.id, created=2, state_type=StateType.PENDING),
        "retry": make_task_run(
            silent.id, created=3, state_type=StateType.SCHEDULED, state_name="AwaitingRetry"
        ),
        "done": make_task_run(
            silent.id, created=4, state_type=StateType.COMPLETED, result="results/r"
        ),
        "failed": make_task_run(silent.id, created=4, state_type=StateType.FAILED),
        "fresh": make_task_run(fresh.id, created=1, state_type=StateType.RUNNING),
    }
    for task in tasks.values():
        backend.write_task_run(task)

    before = utcnow()
    marked = backend.mark_lapsed_runs_crashed(60)
    after = utcnow()
    assert sorted(marked) == sorted([silent.id, never_beat.id])

    ended = backend.read_flow_run(silent.id).end_time
    assert ended is not None and before - dt.timedelta(seconds=1) <= ended <= after
    for run, seen in ((silent, at(0)), (never_beat, at(5))):
        stored = backend.read_flow_run(run.id)
        assert (stored.state_type, stored.state_name) == (StateType.CRASHED, "Crashed")
        assert stored.end_time == ended and stored.updated == ended
        assert stored.start_time == run.start_time
        message = stored.state_message or ""
        assert message.startswith("No heartbeat since") and "marked Crashed" in message
        assert str(seen.year) in message
        history = backend.read_states(run.id)
        assert [(s.type, s.name, s.timestamp) for s in history] == [
            (StateType.CRASHED, "Crashed", ended)
        ]
        assert history[0].kind == "flow" and history[0].message == message
    for key in ("running", "pending", "retry"):
        stored_task = backend.read_task_run(tasks[key].id)
        assert (stored_task.state_type, stored_task.state_name) == (StateType.CRASHED, "Crashed")
        assert stored_task.end_time == ended
        assert [(s.kind, s.type) for s in backend.read_states(tasks[key].id)] == [
            ("task", StateType.CRASHED)
        ]
    for key, state in (
        ("done", StateType.COMPLETED),
        ("failed", StateType.FAILED),
        ("fresh", StateType.RUNNING),
    ):
        assert backend.read_task_run(tasks[key].id).state_type is state
        assert backend.read_states(tasks[key].id) == []
    beat = backend.read_flow_run(fresh.id).heartbeat
    assert beat is not None and before - dt.timedelta(seconds=5) <= beat <= after
    for run in (fresh, finished, pending):
        stored = backend.read_flow_run(run.id)
        stored.heartbeat = run.heartbeat
        assert stored == run
        assert backend.read_states(run.id) == []

    # Idempotent: nothing more to mark, no second history row.
    assert backend.mark_lapsed_runs_crashed(60) == []
    assert len(backend.read_states(silent.id)) == 1
    assert backend.read_flow_run(silent.id).end_time == ended


def test_mark_lapsed_counts_a_heartbeat_not_yet_flushed(backend: Backend) -> None:
    run = running_flow_run(0)
    backend.write_flow_run(run)
    backend.flush()
    backend.heartbeat(run.id, at(0))  # buffered: must count, stamped when written
    assert backend.mark_lapsed_runs_crashed(60) == []
    assert backend.read_flow_run(run.id).state_type is StateType.RUNNING
    assert backend.mark_lapsed_runs_crashed(0) == [run.id]


def test_mark_lapsed_from_two_backends_marks_each_run_once(backend: Backend) -> None:
    import threading

    from sluice.backend.local import LocalBackend

    runs = [running_flow_run(i) for i in range(20)]
    for run in runs:
        backend.write_flow_run(run)
        backend.write_task_run(make_task_run(run.id, state_type=StateType.RUNNING))
    backend.flush()
    others = [LocalBackend(backend.settings) for _ in range(3)]  # type: ignore[attr-defined]
    results: list[list[str]] = []
    barrier = threading.Barrier(len(others))

    def mark(other: Backend) -> None:
        barrier.wait()
        results.append(other.mark_lapsed_runs_crashed(60))

    try:
        threads = [threading.Thread(target=mark, args=(o,)) for o in others]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in others:
            other.close()
    marked = [run_id for found in results for run_id in found]
    assert sorted(marked) == sorted(r.id for r in runs)
    for run in runs:
        assert len(backend.read_states(run.id)) == 1
        (task,) = backend.read_task_runs(run.id)
        assert task.state_type is StateType.CRASHED
        assert len(backend.read_states(task.id)) == 1
