"""The UI's store reads (sluice.store.ui_queries) on real SQLite, and PostgreSQL when set."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sluice.backend.local import LocalBackend
from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings, StoreSettings
from sluice.states import State, StateType
from sluice.store import ui_graph, ui_queries
from tests.pg_databases import pg_database, postgresql_param

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
T = TypeVar("T")


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pg_database("sluice_ui") as url:
        yield url


@pytest.fixture(params=["sqlite", postgresql_param()])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalBackend]:
    store = StoreSettings(flush_interval=0.05, lock_timeout=10.0)
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    instance = LocalBackend(Settings(home=tmp_path / "home", database_url=url, store=store))
    if url:
        from sluice.store.database import write_connection
        from sluice.store.schema import metadata

        with write_connection(instance.engine) as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    yield instance
    instance.close()


def read(backend: LocalBackend, query: Callable[[Any], T]) -> T:
    return backend.read(query)


def flow_run(
    backend: LocalBackend, state: StateType = StateType.COMPLETED, created: float = 0.0
) -> FlowRunRecord:
    run = FlowRunRecord(new_id(), "etl", f"run-{new_id()[-6:]}", created=at(created))
    new_state = State(state, timestamp=at(created + 1))
    run.apply(new_state)
    backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", new_state))
    return run


def task_run(
    backend: LocalBackend,
    flow_run_id: str,
    name: str,
    *,
    call: int = 0,
    index: int = -1,
    upstream: list[str] | None = None,
    state: StateType = StateType.COMPLETED,
    at_seconds: float = 1.0,
) -> TaskRunRecord:
    run = TaskRunRecord(
        new_id(), name, f"{name}-{call}", flow_run_id, call_index=call, map_index=index,
        upstream_ids=upstream or [], created=at(at_seconds),
    )  # fmt: skip
    run.apply(State(StateType.RUNNING, timestamp=at(at_seconds)))
    if state is not StateType.RUNNING:
        run.apply(State(state, timestamp=at(at_seconds + 1)))
    backend.write_task_run(run)
    return run


def test_graph_groups_mapped_calls_and_dedups_edges(backend: LocalBackend) -> None:
    run = flow_run(backend)
    source = task_run(backend, run.id, "extract")
    mapped = [
        task_run(backend, run.id, "square", index=i, upstream=[source.id],
                 state=StateType.FAILED if i == 3 else StateType.COMPLETED)
        for i in range(50)
    ]  # fmt: skip
    sink = task_run(backend, run.id, "load", upstream=[m.id for m in mapped])
    graph = read(backend, lambda conn: ui_graph.task_graph(conn, run.id))
    nodes = {node["key"]: node for node in graph["nodes"]}
    assert graph["task_run_count"] == 52 and len(nodes) == 3 and not graph["folded"]
    group = nodes["m:0:square"]
    assert group["count"] == 50 and group["states"] == {"COMPLETED": 49, "FAILED": 1}
    assert group["kind"] == "map" and group["task_run_id"] is None
    assert sorted(graph["edges"]) == sorted(
        [(f"t:{source.id}", "m:0:square"), ("m:0:square", f"t:{sink.id}")]
    )
    expanded = read(backend, lambda conn: ui_graph.task_graph(conn, run.id, ["m:0:square"]))
    assert len(expanded["nodes"]) == 52 and len(expanded["edges"]) == 100


def test_graph_folds_many_calls_by_name_and_refuses_huge_expansions(
    backend: LocalBackend,
) -> None:
    run = flow_run(backend)
    for call in range(ui_graph.MAX_NODES + 5):
        task_run(backend, run.id, "step", call=call)
    for i in range(ui_graph.MAX_EXPAND + 1):
        task_run(backend, run.id, "fan", index=i)
    graph = read(backend, lambda conn: ui_graph.task_graph(conn, run.id, ["m:0:fan"]))
    assert graph["folded"]
    nodes = {node["key"]: node for node in graph["nodes"]}
    assert set(nodes) == {"n:step", "m:0:fan"}  # too large to expand: still one node
    assert nodes["n:step"]["count"] == ui_graph.MAX_NODES + 5


def test_version_token_moves_with_any_state_change(backend: LocalBackend) -> None:
    run = flow_run(backend)
    late = task_run(backend, run.id, "a", at_seconds=10)
    early = task_run(backend, run.id, "b", state=StateType.RUNNING, at_seconds=2)
    before = read(backend, lambda conn: ui_queries.task_runs_version(conn, run.id))
    # The latest update time stays the other run's: the token must still change.
    early.apply(State(StateType.COMPLETED, timestamp=at(4)))
    backend.write_task_run(early)
    after = read(backend, lambda conn: ui_queries.task_runs_version(conn, run.id))
    assert before != after
    assert late.updated > early.updated


def test_task_runs_page_filters_by_state_and_group(backend: LocalBackend) -> None:
    run = flow_run(backend)
    for i in range(7):
        task_run(backend, run.id, "m", index=i, at_seconds=i,
                 state=StateType.FAILED if i % 2 else StateType.COMPLETED)  # fmt: skip
    task_run(backend, run.id, "solo", at_seconds=20)
    page = read(backend, lambda conn: ui_queries.task_runs_page(conn, run.id, offset=2, limit=3))
    assert page["total"] == 8 and [t["map_index"] for t in page["task_runs"]] == [2, 3, 4]
    failed = read(backend, lambda conn: ui_queries.task_runs_page(conn, run.id, states=["FAILED"]))
    assert failed["total"] == 3
    group = ui_queries.parse_group("m:0:m")
    only = read(backend, lambda conn: ui_queries.task_runs_page(conn, run.id, group=group))
    assert only["total"] == 7
    assert ui_queries.parse_group("m:x:m") is None and ui_queries.parse_group("t:abc") is None


def test_dashboard_buckets_failures_and_late_runs(backend: LocalBackend) -> None:
    flow_run(backend, StateType.COMPLETED, created=10)
    flow_run(backend, StateType.COMPLETED, created=70)
    failed = flow_run(backend, StateType.FAILED, created=75)
    waiting = flow_run(backend, StateType.PENDING, created=100)
    flow_run(backend, StateType.COMPLETED, created=-50)  # before the window
    since = T0.timestamp()
    view = read(
        backend,
        lambda conn: ui_queries.dashboard(conn, since, since + 180, 60, since + 300, 60),
    )
    assert view["buckets"] == [
        {"COMPLETED": 1},
        {"COMPLETED": 1, "FAILED": 1, "PENDING": 1},
        {},
    ]
    assert view["totals"] == {"COMPLETED": 2, "FAILED": 1, "PENDING": 1}
    assert [r["id"] for r in view["failures"]] == [failed.id]
    assert [r["id"] for r in view["late"]] == [waiting.id] and view["late_count"] == 1
    assert view["running"] == 0


def test_log_search_is_case_insensitive_literal_and_paged_by_id(backend: LocalBackend) -> None:
    run = flow_run(backend)
    lines = ["Loading 50% of rows", "loading_done", "LOADING again", "warning: disk", "x"]
    backend.write_logs(
        [
            LogRecord(run.id, None, 30 if "warning" in m else 20, "l", m, at(i))
            for i, m in enumerate(lines)
        ]
    )

    def search(**kwargs: Any) -> dict[str, Any]:
        return read(backend, lambda conn: ui_queries.search_logs(conn, run.id, **kwargs))

    assert [x["message"] for x in search(text="loading")["logs"]] == lines[:3]
    assert [x["message"] for x in search(text="50%")["logs"]] == [lines[0]]
    assert [x["message"] for x in search(text="g_d")["logs"]] == [lines[1]]
    assert [x["message"] for x in search(min_level=30)["logs"]] == [lines[3]]
    first = search(limit=2)
    assert first["more"] and len(first["logs"]) == 2
    rest = search(after_id=first["last_id"], limit=10)
    assert [x["message"] for x in rest["logs"]] == lines[2:] and not rest["more"]
    assert search(after_id=rest["last_id"])["logs"] == []


def test_flows_with_recent_runs_and_children(backend: LocalBackend) -> None:
    backend.write_flow(FlowRecord("etl", created=at(0)))
    parent = flow_run(backend, created=0)
    runs = [flow_run(backend, created=i) for i in range(1, 5)]
    child = FlowRunRecord(new_id(), "etl", "child", parent_flow_run_id=parent.id, created=at(9))
    backend.write_flow_run(child)
    flows = read(backend, lambda conn: ui_queries.flows_with_runs(conn, 0, 10, 3))
    assert [f["name"] for f in flows] == ["etl"]
    assert [r["id"] for r in flows[0]["recent_runs"]] == [child.id, runs[3].id, runs[2].id]
    kids = read(backend, lambda conn: ui_queries.child_runs(conn, parent.id))
    assert [k["id"] for k in kids] == [child.id]


def test_edges_are_reused_until_a_task_run_is_added(backend: LocalBackend) -> None:
    run = flow_run(backend)
    source = task_run(backend, run.id, "extract")
    middle = task_run(backend, run.id, "transform", upstream=[source.id], state=StateType.RUNNING)
    cache = ui_graph.EdgeCache(size=2)

    def graph() -> dict[str, Any]:
        return read(backend, lambda conn: ui_graph.task_graph(conn, run.id, (), cache))

    first = graph()
    assert first["edges"] == [(f"t:{source.id}", f"t:{middle.id}")]
    middle.apply(State(StateType.COMPLETED, timestamp=at(9)))
    backend.write_task_run(middle)
    moved = graph()  # a state change: same edges, fresh node states
    assert moved["edges"] == first["edges"]
    assert {n["key"]: n["states"] for n in moved["nodes"]}[f"t:{middle.id}"] == {"COMPLETED": 1}
    sink = task_run(backend, run.id, "load", upstream=[middle.id])
    assert (f"t:{middle.id}", f"t:{sink.id}") in graph()["edges"]  # a new task run: recomputed


def deployment_run(
    backend: LocalBackend,
    state: StateType,
    *,
    due: float,
    created: float = 0.0,
    name: str | None = None,
    queue: str = "default",
) -> FlowRunRecord:
    from sluice.store.database import write_connection
    from sluice.store.schema import flow_run as flow_run_table

    run = FlowRunRecord(new_id(), "etl", f"dep-{new_id()[-6:]}", created=at(created))
    new_state = State(state, name=name, timestamp=at(created))
    run.apply(new_state)
    backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", new_state))
    backend.flush()
    # The deployment layer's columns, as its claim and schedule writes set them.
    columns = {
        "deployment_id": "dep-1",
        "work_pool_name": "pool",
        "work_queue_name": queue,
        "scheduled_start_time": at(due).timestamp(),
    }
    with write_connection(backend.engine) as conn:
        conn.execute(flow_run_table.update().where(flow_run_table.c.id == run.id).values(columns))
    return run


def test_deployment_runs_queue_depths_and_late_by_scheduled_time(backend: LocalBackend) -> None:
    now = T0.timestamp() + 1000
    soon = deployment_run(backend, StateType.SCHEDULED, due=1500)
    later = deployment_run(backend, StateType.SCHEDULED, due=5000)
    late = deployment_run(backend, StateType.SCHEDULED, due=800, name="Late")
    due = deployment_run(backend, StateType.SCHEDULED, due=990, queue="high")  # not late yet
    done = deployment_run(backend, StateType.COMPLETED, due=100, created=100)
    backend.flush()
    upcoming = read(
        backend, lambda c: ui_queries.deployment_runs(c, "dep-1", upcoming=True, limit=3)
    )
    assert [r["id"] for r in upcoming] == [late.id, due.id, soon.id]
    assert upcoming[0]["scheduled_start_time"] == at(800).timestamp()
    recent = read(
        backend, lambda c: ui_queries.deployment_runs(c, "dep-1", upcoming=False, limit=9)
    )
    assert [r["id"] for r in recent] == [done.id]
    depths = read(backend, lambda c: ui_queries.queue_depths(c, "pool", now))
    assert depths == {"default": {"due": 1, "later": 2}, "high": {"due": 1, "later": 0}}
    assert later.id not in [r["id"] for r in upcoming]
    # Created long ago, a run is late only from its scheduled time (or its name Late).
    view = read(backend, lambda c: ui_queries.dashboard(c, now - 600, now, 60, now, 60))
    assert {r["id"] for r in view["late"]} == {late.id} and view["late_count"] == 1


def test_online_workers_are_those_heard_from_recently(backend: LocalBackend) -> None:
    from sluice.schemas import WorkPoolRecord

    backend.create_work_pool(WorkPoolRecord(name="pool"))
    backend.worker_heartbeat("pool", "fresh", hostname="h1", now=at(100))
    backend.worker_heartbeat("pool", "silent", now=at(10))
    backend.worker_heartbeat("pool", "stopped", status="STOPPED", now=at(100))
    online = read(backend, lambda c: ui_queries.online_workers(c, at(50).timestamp()))
    assert online == [{"pool_name": "pool", "name": "fresh", "hostname": "h1"}]
