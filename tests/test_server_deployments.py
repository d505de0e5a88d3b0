"""The deployment endpoints over a real server: status codes, and the scheduler service."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.backend.local import LocalBackend
from sluice.schemas import FlowRunRecord, new_id
from sluice.settings import Settings
from sluice.states import Failed
from tests.deployment_backends import INTERVAL, SCHEMA, empty_store
from tests.server_process import ServerProcess

DEPLOYMENT: dict[str, Any] = {
    "name": "daily",
    "flow_name": "etl",
    "entrypoint": "flows/etl.py:etl",
    "parameters": {"n": 1},
    "parameter_schema": SCHEMA,
}


@pytest.fixture
def api(api_server: ServerProcess) -> Iterator[httpx.Client]:
    store = LocalBackend(Settings(home=api_server.home))
    try:
        empty_store(store)
    finally:
        store.close()
    with httpx.Client(base_url=f"{api_server.url}/api", timeout=30) as client:
        yield client


def test_deployment_round_trip_and_unknown_names(api: httpx.Client) -> None:
    created = api.put("/deployments", json=DEPLOYMENT)
    assert created.status_code == 200, created.text
    body = created.json()
    assert api.get("/deployments/etl/daily").json()["id"] == body["id"]
    assert api.get("/deployments", params={"id": body["id"]}).json()[0]["name"] == "daily"
    missing = api.get("/deployments/etl/weekly")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "deployment 'etl/weekly' not found"
    assert api.get("/work_pools/nope").status_code == 404
    assert api.post("/deployments/etl/weekly/runs", json={}).status_code == 404


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schedules": [{"kind": "weekly"}]}, "schedule kind 'weekly'"),
        ({"schedules": [{"kind": "cron", "cron": "99 * * * *"}]}, "cron"),
        ({"entrypoint": "no-function-here"}, "entrypoint"),
        ({"concurrency_limit": -1}, "concurrency_limit"),
        ({"parameters": {"n": "one"}}, "n: expected integer"),
        ({"parameter_schema": {"properties": 3}}, "properties"),
    ],
)
def test_bad_deployments_are_422(api: httpx.Client, change: dict[str, Any], expected: str) -> None:
    answer = api.put("/deployments", json={**DEPLOYMENT, **change})
    assert answer.status_code == 422, answer.text
    assert expected in str(answer.json()["detail"])
    assert api.get("/deployments").json() == []


def test_bad_parameters_are_422_and_create_no_run(api: httpx.Client) -> None:
    api.put("/deployments", json=DEPLOYMENT)
    answer = api.post("/deployments/etl/daily/runs", json={"parameters": {"n": "x", "m": 1}})
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "Invalid parameters for flow 'etl': m: unknown parameter (the flow takes: label, n); "
        "n: expected integer, got string 'x'"
    )
    assert api.get("/deployments/etl/daily/runs").json() == []
    ok = api.post("/deployments/etl/daily/runs", json={"parameters": {"n": 5}})
    assert ok.status_code == 201
    assert ok.json()["state_name"] == "Scheduled"


def test_conflicts_are_409(api: httpx.Client) -> None:
    assert api.post("/work_pools", json={"name": "p"}).status_code == 201
    again = api.post("/work_pools", json={"name": "p"})
    assert again.status_code == 409
    assert again.json()["detail"] == "work pool 'p': a work pool of that name exists"
    api.put("/deployments", json={**DEPLOYMENT, "work_pool_name": "p"})
    in_use = api.delete("/work_pools/p")
    assert in_use.status_code == 409 and "etl/daily" in in_use.json()["detail"]
    assert api.delete("/work_pools/p/queues/default").status_code == 409


def test_nul_characters_are_refused(api: httpx.Client) -> None:
    answer = api.put("/deployments", json={**DEPLOYMENT, "description": "a\x00b"})
    assert answer.status_code == 422 and "NUL" in answer.json()["detail"]
    assert api.get("/deployments/etl%00/daily").status_code == 422
    assert api.post("/work_pools", json={"name": "p\x00"}).status_code == 422


def test_ids_are_assigned_by_the_server(api: httpx.Client) -> None:
    first = api.put("/deployments", json=DEPLOYMENT).json()
    other = api.put("/deployments", json={**DEPLOYMENT, "name": "b", "id": first["id"]})
    assert other.status_code == 200 and other.json()["id"] != first["id"]
    pool = api.post("/work_pools", json={"name": "p", "id": "x"}).json()
    again = api.post("/work_pools", json={"name": "q", "id": pool["id"]})
    assert again.status_code == 201 and again.json()["id"] != pool["id"]


def test_listing_pages(api: httpx.Client) -> None:
    for i in range(3):
        api.put("/deployments", json={**DEPLOYMENT, "name": f"d{i}"})
    page = api.get("/deployments", params={"limit": 2, "offset": 1}).json()
    assert [d["name"] for d in page] == ["d1", "d2"]


def test_resume_endpoint(api: httpx.Client, api_server: ServerProcess) -> None:
    store = LocalBackend(Settings(home=api_server.home))
    try:
        adhoc = FlowRunRecord(id=new_id(), flow_name="etl", name="adhoc")
        adhoc.apply(Failed())
        store.write_flow_run(adhoc)
        store.flush()
    finally:
        store.close()
    refused = api.post(f"/flow_runs/{adhoc.id}/resume")
    assert refused.status_code == 409
    assert f"sluice flow-run resume {adhoc.id}" in refused.json()["detail"]
    assert api.post("/flow_runs/nope/resume").status_code == 404


def test_resume_from_a_task_over_http(api: httpx.Client, api_server: ServerProcess) -> None:
    from sluice.schemas import TaskRunRecord
    from sluice.states import Completed

    assert api.put("/deployments", json=DEPLOYMENT).status_code == 200
    run = api.post("/deployments/etl/daily/runs", json={}).json()
    store = LocalBackend(Settings(home=api_server.home))
    try:
        record = store.read_flow_run(run["id"])
        record.apply(Failed())
        store.write_flow_run(record)
        task = TaskRunRecord(new_id(), "load", "load-0", record.id)
        task.apply(Completed())
        store.write_task_run(task)
        store.flush()
    finally:
        store.close()
    path = f"/flow_runs/{run['id']}/resume"
    for body, field_message in [
        ({"from_task": "load:x"}, "expected TASK_NAME or TASK_NAME:INDEX"),
        ({"from_task": "publish"}, "never ran a task named 'publish'"),
        ({"from_task": "load:3"}, "never made call 3 of task 'load'"),
        ({"from_task": "lo\x00ad"}, "NUL"),
    ]:
        refused = api.post(path, json=body)
        assert refused.status_code == 422, refused.text
        answer = refused.json()
        assert answer["detail"].startswith("from_task: ")
        [field] = answer["fields"]
        assert field["field"] == "from_task" and field_message in field["message"]
    assert api.post(path, json={"from_task": 3}).status_code == 422  # not a string
    assert api.post(path, json={"from": "load"}).status_code == 422  # a misspelt field
    resumed = api.post(path, json={"from_task": "load:0"})
    assert resumed.status_code == 200 and resumed.json()["state_name"] == "AwaitingResume"
    states = api.get(f"/runs/{run['id']}/states").json()
    assert states[-1]["details"] == {"from_task": "load:0"}
    assert api.post(path, json={"from_task": "load"}).status_code == 409  # queued already


def test_bad_claims_and_changes_are_422(api: httpx.Client) -> None:
    api.post("/work_pools", json={"name": "p"})
    claim = {"worker_name": "w", "pool_name": "p"}
    assert api.post("/claims", json={**claim, "limit": 0}).status_code == 422
    assert api.post("/claims", json={**claim, "limit": 1}).json() == []
    assert api.post("/claims", json={**claim, "now": "2024-01-01T00:00:00"}).status_code == 422
    misspelt = api.post("/claims", json={**claim, "limits": 2})  # not silently ignored
    assert misspelt.status_code == 422 and misspelt.json()["error"]["fields"]["field"] == "limits"
    bad = api.patch("/work_pools/p", json={"type": "docker"})
    assert bad.status_code == 422 and "cannot change type" in bad.json()["detail"]
    assert api.patch("/work_pools/p", json={"paused": "yes"}).status_code == 422
    assert api.post("/scheduler/mark_late", json={"grace": -1}).status_code == 422
    api.put("/deployments", json=DEPLOYMENT)
    bad_cron = {"schedules": [{"kind": "cron", "cron": "* * * *"}]}
    refused = api.patch("/deployments/etl/daily", json=bad_cron)
    assert refused.status_code == 422 and "cron" in refused.json()["detail"]
    hourly = {"kind": "cron", "cron": "0 * * * *"}
    changed = api.patch("/deployments/etl/daily", json={"schedules": [hourly]})
    assert changed.status_code == 200, changed.text
    assert [s["cron"] for s in changed.json()["schedules"]] == ["0 * * * *"]


@pytest.mark.integration
def test_the_server_schedules_runs(tmp_path: Path) -> None:
    env = {"SLUICE_SCHEDULER_INTERVAL": "0.2", "SLUICE_SCHEDULER_HORIZON": "120"}
    server = ServerProcess(tmp_path / "home", env=env)
    server.start()
    try:
        with httpx.Client(base_url=f"{server.url}/api", timeout=30) as api:
            start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            anchor = start + dt.timedelta(seconds=5)
            schedule = {**INTERVAL, "interval": 30.0, "anchor_date": anchor.isoformat()}
            answer = api.put("/deployments", json={**DEPLOYMENT, "schedules": [schedule]})
            assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 20
            runs: list[Any] = []
            while time.monotonic() < deadline and len(runs) < 4:
                time.sleep(0.2)
                runs = api.get("/deployments/etl/daily/runs").json()
            # Ticks every 30 s from the anchor, two minutes ahead.
            assert len(runs) == 4, server.log()
            times = [dt.datetime.fromisoformat(r["scheduled_start_time"]) for r in runs]
            assert times == [anchor + dt.timedelta(seconds=30 * i) for i in range(4)]
    finally:
        server.stop()


def test_refusals_carry_the_error_beside_the_detail(api: httpx.Client) -> None:
    assert api.post("/work_pools", json={"name": "p"}).status_code == 201
    taken = api.post("/work_pools", json={"name": "p"}).json()
    assert taken["detail"] == "work pool 'p': a work pool of that name exists"  # unchanged
    assert taken["error"] == {
        "type": "ConflictError",
        "fields": {"kind": "work pool", "key": "p", "reason": "a work pool of that name exists"},
    }
    missing = api.get("/deployments/etl/weekly").json()
    assert missing["error"] == {
        "type": "NotFoundError",
        "fields": {"kind": "deployment", "key": "etl/weekly"},
    }
    api.put("/deployments", json=DEPLOYMENT)
    bad = api.post("/deployments/etl/daily/runs", json={"parameters": {"n": "x"}}).json()
    assert bad["error"]["type"] == "ParameterValidationError"
    assert bad["error"]["fields"]["errors"] == [["n", "expected integer, got string 'x'"]]
    assert bad["fields"] == [{"field": "n", "message": "expected integer, got string 'x'"}]
    # A body the schema refuses: FastAPI's field errors, and the first as the error.
    late = api.post("/scheduler/mark_late", json={"grace": "soon"}).json()
    assert isinstance(late["detail"], list)
    assert late["error"]["type"] == "InvalidInputError"
    assert late["error"]["fields"]["field"] == "grace"
