"""The REST API (docs/api.md) in process: FastAPI's TestClient over a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sluice import flow, get_run_logger, task
from sluice.backend.factory import close_backends
from sluice.server.app import create_app
from sluice.server.middleware import MAX_BODY_BYTES
from sluice.settings import load_settings
from sluice.states import StateType
from tests.server_helpers import (
    FlowRecord,
    IngestBatch,
    at,
    flow_run,
    heartbeat,
    ingest_batch,
    log,
    payload,
    task_run,
)

JSON_TYPE = {"content-type": "application/json"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(load_settings()), base_url="http://127.0.0.1") as c:
        yield c


def ingest(client: TestClient, batch: IngestBatch) -> int:
    response = client.post("/api/ingest", json=payload(batch))
    assert response.status_code == 202, response.text
    accepted: int = response.json()["accepted"]
    return accepted


def test_health(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "version": "0.1.0"}


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert "/api/flow_runs/{flow_run_id}/set_state" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_ingest_then_read_back(client: TestClient) -> None:
    run, write = flow_run(StateType.RUNNING, tags=["nightly"])
    tasks = [task_run(run.id, index=i) for i in range(3)]
    batch = ingest_batch(
        flows=[FlowRecord("etl", description="Nightly ETL")],
        flow_runs=[write],
        task_runs=tasks,
        logs=[log(run.id, "hello"), log(run.id, "debug", level=10)],
        heartbeats=[heartbeat(run.id, 30)],
    )
    assert ingest(client, batch) == 12  # 1 flow, 4 runs, 4 states, 2 logs, 1 heartbeat

    assert client.get("/api/flows").json()[0]["name"] == "etl"
    assert client.get("/api/flows/etl").json()["description"] == "Nightly ETL"
    got = client.get(f"/api/flow_runs/{run.id}").json()
    assert got["state_type"] == "RUNNING" and got["tags"] == ["nightly"]
    # Stamped with the store's clock, not the sender's (one clock judges liveness).
    assert got["heartbeat"][:4] >= "2026" and not got["heartbeat"].startswith("2025-03-01")
    assert client.get(f"/api/flow_runs/{run.id[:20]}").json()["id"] == run.id  # a prefix
    task_ids = [t["id"] for t in client.get(f"/api/flow_runs/{run.id}/task_runs").json()]
    assert task_ids == [t.run.id for t in tasks]
    assert client.get(f"/api/task_runs/{tasks[1].run.id}").json()["name"] == "extract-1"
    states = client.get(f"/api/runs/{run.id}/states").json()
    assert [s["type"] for s in states] == ["RUNNING"]
    logs = client.get(f"/api/flow_runs/{run.id}/logs").json()
    assert [line["message"] for line in logs] == ["hello", "debug"]
    info = client.get(f"/api/flow_runs/{run.id}/logs", params={"min_level": 20}).json()
    assert [line["message"] for line in info] == ["hello"]


def test_ingest_is_idempotent(client: TestClient) -> None:
    run, write = flow_run(StateType.RUNNING)
    batch = ingest_batch(flow_runs=[write], task_runs=[task_run(run.id)])
    ingest(client, batch)
    ingest(client, batch)  # a client retrying a batch it got no answer for
    assert client.get("/api/flow_runs/count").json() == {"count": 1}
    assert len(client.get(f"/api/flow_runs/{run.id}/task_runs").json()) == 1


def test_flow_run_filters_and_paging(client: TestClient) -> None:
    runs = [
        flow_run(StateType.COMPLETED, created=0, tags=["a"]),
        flow_run(StateType.FAILED, created=10, tags=["a", "b"]),
        flow_run(StateType.RUNNING, created=20, flow_name="report"),
    ]
    ingest(client, ingest_batch(flow_runs=[w for _, w in runs]))
    ids = [r.id for r, _ in runs]

    def listed(**params: object) -> list[str]:
        response = client.get("/api/flow_runs", params=params)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()]

    assert listed() == ids[::-1]  # newest first
    assert listed(flow_name="etl") == [ids[1], ids[0]]
    assert listed(state=["COMPLETED", "RUNNING"]) == [ids[2], ids[0]]
    assert listed(tag=["a", "b"]) == [ids[1]]
    assert listed(started_after=at(5).isoformat()) == [ids[2], ids[1]]
    assert listed(started_before=at(5).isoformat()) == [ids[0]]
    assert listed(limit=1, offset=1) == [ids[1]]
    count = client.get("/api/flow_runs/count", params={"tag": "a", "limit": 1})
    assert count.json() == {"count": 2}


def test_journal_cache_and_mark_lapsed(client: TestClient) -> None:
    run, write = flow_run(StateType.RUNNING, heartbeat=5)
    cached = task_run(run.id, cache_key="k1")
    ingest(client, ingest_batch(flow_runs=[write], task_runs=[cached, task_run(run.id, index=1)]))
    journal = client.get(f"/api/flow_runs/{run.id}/journal").json()
    assert [t["id"] for t in journal] == [cached.run.id]
    found = client.get(
        "/api/task_runs/cached", params={"cache_key": "k1", "now": at(9).isoformat()}
    )
    assert found.json()["id"] == cached.run.id
    assert client.get("/api/task_runs/cached", params={"cache_key": "nope"}).json() is None

    body = {"timeout": 60}
    assert client.post("/api/flow_runs/mark_lapsed", json=body).json() == {"ids": [run.id]}
    assert client.get(f"/api/flow_runs/{run.id}").json()["state_type"] == "CRASHED"
    assert client.post("/api/flow_runs/mark_lapsed", json=body).json() == {"ids": []}


# -- state changes ---------------------------------------------------------------------


def test_set_state_and_refusal(client: TestClient) -> None:
    run, write = flow_run(StateType.RUNNING)
    ingest(client, ingest_batch(flow_runs=[write]))
    done = client.post(
        f"/api/flow_runs/{run.id}/set_state", json={"type": "COMPLETED", "message": "by hand"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["state_name"] == "Completed" and done.json()["end_time"] is not None
    refused = client.post(f"/api/flow_runs/{run.id}/set_state", json={"type": "RUNNING"})
    assert refused.status_code == 409
    assert refused.json()["rule"] == "NoTransitionOutOfTerminal"
    states = client.get(f"/api/runs/{run.id}/states").json()
    assert [(s["type"], s["message"]) for s in states] == [
        ("RUNNING", None),
        ("COMPLETED", "by hand"),
    ]


def test_cancel(client: TestClient) -> None:
    running, w1 = flow_run(StateType.RUNNING)
    pending, w2 = flow_run(StateType.PENDING)
    finished, w3 = flow_run(StateType.COMPLETED)
    ingest(client, ingest_batch(flow_runs=[w1, w2, w3]))
    assert client.post(f"/api/flow_runs/{running.id}/cancel").json()["state_type"] == "CANCELLING"
    again = client.post(f"/api/flow_runs/{running.id}/cancel")  # idempotent
    assert again.status_code == 200 and again.json()["state_type"] == "CANCELLING"
    assert client.post(f"/api/flow_runs/{pending.id}/cancel").json()["state_type"] == "CANCELLED"
    refused = client.post(f"/api/flow_runs/{finished.id}/cancel")
    assert refused.status_code == 409 and "final state" in refused.json()["detail"]
    assert len(client.get(f"/api/runs/{running.id}/states").json()) == 2  # no duplicate


# -- errors ------------------------------------------------------------------------------


def test_unknown_ids_are_404(client: TestClient) -> None:
    for path in ["/api/flows/nope", "/api/flow_runs/nope", "/api/task_runs/nope"]:
        response = client.get(path)
        assert response.status_code == 404 and "not found" in response.json()["detail"]
    assert client.post("/api/flow_runs/nope/cancel").status_code == 404
    assert client.post("/api/flow_runs/nope/set_state", json={"type": "FAILED"}).status_code == 404


def test_ambiguous_prefix_is_409(client: TestClient) -> None:
    _, wa = flow_run()
    _, wb = flow_run()
    wa.run.id, wb.run.id = "abcd0001-x", "abcd0002-x"
    ingest(client, ingest_batch(flow_runs=[wa, wb]))
    response = client.get("/api/flow_runs/abcd")
    assert response.status_code == 409 and "ambiguous" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/api/ingest", {"json": {"flow_runs": [{"run": {"id": 3}}]}}),
        ("post", "/api/ingest", {"content": b"{not json", "headers": JSON_TYPE}),
        ("post", "/api/flow_runs/x/set_state", {"json": {"type": "SLEEPING"}}),
        ("post", "/api/flow_runs/mark_lapsed", {"json": {"timeout": "yesterday"}}),
        ("post", "/api/flow_runs/mark_lapsed", {"json": {"timeout": -1}}),
        ("get", "/api/flow_runs", {"params": {"limit": 5000}}),
        ("get", "/api/flow_runs", {"params": {"state": "bogus"}}),
        ("get", "/api/flow_runs", {"params": {"started_after": "2025-01-01T00:00:00"}}),
        ("get", "/api/task_runs/cached", {}),
    ],
)  # fmt: skip
def test_malformed_requests_are_422(
    client: TestClient, method: str, path: str, kwargs: dict[str, object]
) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)  # field errors


def test_oversized_body_is_413(client: TestClient) -> None:
    big = b" " * (MAX_BODY_BYTES + 1)
    response = client.post("/api/ingest", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_oversized_streamed_body_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(17):
            yield b" " * (1024 * 1024)

    response = client.post(
        "/api/ingest", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_too_many_records_is_413(client: TestClient) -> None:
    batch = {"heartbeats": [{"flow_run_id": "r", "at": "2025-01-01T00:00:00Z"}] * 100_001}
    response = client.post("/api/ingest", json=batch)
    assert response.status_code == 413 and "100000" in response.json()["detail"]


def test_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_API_KEY", "s3cret")
    with TestClient(create_app(load_settings()), base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").status_code == 200  # open for probes
        assert c.get("/api/flow_runs").status_code == 401
        assert c.get("/api/nope").status_code == 401
        wrong = {"Authorization": "Bearer guess"}
        assert c.get("/api/flow_runs", headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert c.get("/api/flow_runs", headers=right).status_code == 200
        assert c.post("/api/ingest", json={}, headers=right).status_code == 202


# -- runs recorded by the embedded engine --------------------------------------------


@task
def double(x: int) -> int:
    return 2 * x


@flow(name="api-visible")
def api_visible(n: int) -> int:
    get_run_logger().info("summing %s", n)
    return sum(double(i) for i in range(n))


def test_embedded_runs_show_up_in_the_api() -> None:
    assert api_visible(3) == 6
    close_backends()  # the engine's process is done; the server opens the same file
    with TestClient(create_app(load_settings()), base_url="http://127.0.0.1") as client:
        runs = client.get("/api/flow_runs", params={"flow_name": "api_visible"}).json()
        assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED"
        assert runs[0]["parameters"] == {"n": 3}
        tasks = client.get(f"/api/flow_runs/{runs[0]['id']}/task_runs").json()
        assert sorted(t["name"] for t in tasks) == ["double-0", "double-1", "double-2"]
        logs = client.get(f"/api/flow_runs/{runs[0]['id']}/logs").json()
        assert any("summing 3" in line["message"] for line in logs)
        states = [s["name"] for s in client.get(f"/api/runs/{runs[0]['id']}/states").json()]
        assert states == ["Pending", "Running", "Completed"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("run_count", 2**70), ("name", "bad \ud800 surrogate"), ("created", "2025-01-01T00:00:00"),
     ("created", "9999-12-31T23:59:59-23:00")],
)  # fmt: skip
def test_unstorable_values_are_422_and_poison_nothing(
    client: TestClient, field: str, value: object
) -> None:
    run, write = flow_run(StateType.RUNNING)
    body = payload(ingest_batch(flow_runs=[write]))
    body["flow_runs"][0][field] = value
    raw = json.dumps(body).encode()  # ASCII escapes: "\ud800" is valid JSON
    response = client.post("/api/ingest", content=raw, headers=JSON_TYPE)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "flow_runs", 0, field]
    # The writer was never handed the bad record: later batches still land.
    good, good_write = flow_run()
    assert ingest(client, ingest_batch(flow_runs=[good_write])) == 2  # the run, its state
    assert client.get(f"/api/flow_runs/{good.id}").status_code == 200
    assert client.get(f"/api/flow_runs/{run.id}").status_code == 404
