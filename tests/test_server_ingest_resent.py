"""A batch sent again (its first answer lost) stores no state or log line twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice.backend.http import HttpBackend
from sluice.backend.local import LocalBackend
from sluice.schemas import FlowRunRecord, LogRecord, StateRecord, new_id
from sluice.server import actions
from sluice.server.ingest_writer import IngestWriter, open_ingest_writer
from sluice.settings import Settings, StoreSettings
from sluice.states import Completed, Running, StateType
from tests.fault_proxy import answer_dropping_proxy
from tests.server_helpers import (
    DIALECTS,
    at,
    flow_run,
    full_batch,
    ingest_batch,
    log,
    payload,
    pg_database,
    task_run,
)
from tests.server_process import ServerProcess


@pytest.fixture(params=DIALECTS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalBackend]:
    """An empty embedded store on each database (the server's side of ingest)."""
    store_settings = StoreSettings(lock_timeout=10.0)
    if request.param == "sqlite":
        backend = LocalBackend(Settings(home=tmp_path, store=store_settings))
        yield backend
        backend.close()
        return
    with pg_database() as url:
        backend = LocalBackend(Settings(home=tmp_path, database_url=url, store=store_settings))
        yield backend
        backend.close()


@pytest.fixture
def writer(store: LocalBackend) -> Iterator[IngestWriter]:
    ingest_writer = open_ingest_writer(store)
    yield ingest_writer
    ingest_writer.close()


def messages(store: LocalBackend, flow_run_id: str) -> list[str]:
    return [line.message for line in store.read_logs(flow_run_id)]


def test_a_resent_batch_appends_only_what_is_missing(
    store: LocalBackend, writer: IngestWriter
) -> None:
    run, write = flow_run(StateType.RUNNING)
    task = task_run(run.id)
    # Two identical lines are two records: a repeat the user really logged.
    lines = [log(run.id, "tick"), log(run.id, "tick"), log(run.id, "nul \x00 inside")]
    first = ingest_batch(flow_runs=[write], task_runs=[task], logs=lines)
    actions.ingest(writer, first)
    again = ingest_batch(flow_runs=[write], task_runs=[task], logs=lines, resent=True)
    assert actions.ingest(writer, again) == first.record_count()
    assert len(store.read_states(run.id)) == 1
    assert len(store.read_states(task.run.id)) == 1
    # PostgreSQL text holds no NUL: stored (and matched) as U+FFFD there.
    nul = messages(store, run.id)[2]
    assert nul in ("nul \x00 inside", "nul \ufffd inside")
    assert messages(store, run.id) == ["tick", "tick", nul]

    # A resent batch that grew meanwhile (the client kept writing): the new
    # records land, a third "tick" included, and nothing else is repeated.
    later = StateRecord.from_state(run.id, "flow", Completed(timestamp=at(5)))
    grown = ingest_batch(
        flow_runs=[write],
        logs=[*lines, log(run.id, "tick"), LogRecord(run.id, None, 30, "app", "late", at(9))],
        resent=True,
    )
    grown.states.append(later)
    actions.ingest(writer, grown)
    assert [s.type for s in store.read_states(run.id)] == [StateType.RUNNING, StateType.COMPLETED]
    assert messages(store, run.id) == ["tick", "tick", nul, "tick", "late"]


def test_without_the_resent_mark_a_second_copy_is_appended(
    store: LocalBackend, writer: IngestWriter
) -> None:
    # What the mark prevents: appends are not checked on the hot path.
    run, write = flow_run(StateType.RUNNING)
    batch = ingest_batch(flow_runs=[write], logs=[log(run.id, "once")])
    actions.ingest(writer, batch)
    actions.ingest(writer, batch)
    assert len(store.read_states(run.id)) == 2
    assert messages(store, run.id) == ["once", "once"]


def states_and_logs(client: httpx.Client, run_id: str) -> tuple[list[str], list[str]]:
    states = client.get(f"/api/runs/{run_id}/states").json()
    lines = client.get(f"/api/flow_runs/{run_id}/logs").json()
    return [s["name"] for s in states], [line["message"] for line in lines]


@pytest.mark.integration
def test_the_same_batch_posted_twice_to_a_real_server_is_stored_once(
    api_server: ServerProcess,
) -> None:
    run, write = flow_run(StateType.RUNNING)
    tasks = [task_run(run.id, index=i) for i in range(3)]
    lines = [log(run.id, f"line {i}") for i in range(4)]
    body = payload(ingest_batch(flow_runs=[write], task_runs=tasks, logs=lines))
    with httpx.Client(base_url=api_server.url) as client:
        for resent in (False, True, True):
            response = client.post("/api/ingest", json={**body, "resent": resent})
            assert response.status_code == 202, response.text
            # 4 runs, 4 states, 4 lines; no fenced run was refused
            assert response.json() == {"accepted": 12, "superseded": []}
        assert states_and_logs(client, run.id) == (["Running"], [f"line {i}" for i in range(4)])
        for task in tasks:
            assert len(client.get(f"/api/runs/{task.run.id}/states").json()) == 1


@pytest.mark.integration
def test_a_batch_whose_answer_was_lost_is_not_stored_twice(
    api_server: ServerProcess, tmp_path: Path
) -> None:
    with answer_dropping_proxy(api_server.url, "/api/ingest") as proxy:
        settings = Settings(
            home=tmp_path, api_url=proxy.url, store=StoreSettings(flush_interval=3600)
        )
        backend = HttpBackend(settings)
        try:
            run = FlowRunRecord(new_id(), "lost-answers", "lost-answer-run")
            for state in (Running(timestamp=at(1)), Completed(timestamp=at(2))):
                run.apply(state)
                backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", state))
            backend.write_logs(
                [LogRecord(run.id, None, 20, "app", f"l{i}", at(i)) for i in range(5)]
            )
            proxy.drop = 1  # the server commits the batch; its answer never comes back
            backend.flush()
            assert proxy.dropped == 1 and proxy.forwarded == 2
        finally:
            backend.close()
    with httpx.Client(base_url=api_server.url) as client:
        assert states_and_logs(client, run.id) == (
            ["Running", "Completed"],
            [f"l{i}" for i in range(5)],
        )


def test_every_kind_of_record_reads_back_as_written(
    store: LocalBackend, writer: IngestWriter
) -> None:
    # SQLite binds parameter tuples, PostgreSQL row dicts: the same records either way.
    batch = full_batch()
    batch.resent = False
    actions.ingest(writer, batch)
    (flow_run_row,) = batch.flow_runs
    (task_run_row,) = batch.task_runs
    stored_run = store.read_flow_run(flow_run_row.id)
    assert stored_run.parameters == flow_run_row.parameters
    # A heartbeat is stamped with the store's clock, not the sender's.
    assert stored_run.heartbeat is not None and stored_run.heartbeat > batch.heartbeats[0].at
    assert (stored_run.state_name, stored_run.entrypoint) == ("Running", "f.py:etl")
    assert store.read_task_run(task_run_row.id) == task_run_row
    (state,) = store.read_states(task_run_row.id)
    assert (state.type, state.message, state.details) == (StateType.FAILED, "boom", {"n": 1})
    (line,) = store.read_logs(flow_run_row.id)
    assert (line.message, line.level, line.task_run_id) == ("héllo ✓", 40, task_run_row.id)
    assert [f.name for f in store.list_flows()] == ["etl"]
