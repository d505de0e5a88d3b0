"""The UI's routes on a real server: page shells, static files, ETags, API-key rules."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.local import LocalBackend
from sluice.schemas import FlowRunRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings
from sluice.states import State, StateType
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

KEY = "s3cret-key"


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ui-server") / "home")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("ui-keyed") / "home"
    process = ServerProcess(home, env={"SLUICE_API_KEY": KEY})
    process.start()
    yield process
    process.stop()


def write_run(home: Path, tasks: int) -> tuple[LocalBackend, FlowRunRecord, list[TaskRunRecord]]:
    backend = LocalBackend(Settings(home=home))
    run = FlowRunRecord(new_id(), "etl", "r1")
    run.apply(State(StateType.RUNNING))
    backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", State(StateType.RUNNING)))
    made = []
    for i in range(tasks):
        task = TaskRunRecord(new_id(), "t", f"t-{i}", run.id, map_index=i)
        task.apply(State(StateType.RUNNING))
        backend.write_task_run(task)
        made.append(task)
    backend.flush()
    return backend, run, made


@pytest.mark.parametrize(
    "path",
    ["/", "/runs", "/flows", "/runs/abc", "/task-runs/abc", "/deployments", "/deployments/f/d",
     "/work-pools"],
)  # fmt: skip
def test_pages_are_html_shells_without_data(server: ServerProcess, path: str) -> None:
    status, headers, body = fetch(server.url + path)
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = body.decode()
    assert '<main id="app"' in text and 'type="module"' in text
    assert ">Flow runs</a>" in text and ">Deployments</a>" in text and ">Work pools</a>" in text


def test_the_url_id_is_escaped_in_the_shell(server: ServerProcess) -> None:
    status, _, body = fetch(server.url + "/runs/%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E")
    assert status == 200
    assert b"<img" not in body and b"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    status, _, body = fetch(server.url + "/deployments/%3Cimg%20src=x%3E/%22%3E")
    assert status == 200 and b"<img" not in body and b'data-id="%3Cimg%20src%3Dx%3E/%22%3E"' in body


def test_static_files_are_served_with_types(server: ServerProcess) -> None:
    status, headers, body = fetch(server.url + "/ui-static/core.js")
    assert status == 200 and "javascript" in headers["content-type"] and b"export" in body
    assert fetch(server.url + "/ui-static/sluice.css")[1]["content-type"].startswith("text/css")
    assert fetch(server.url + "/ui-static/nope.js")[0] == 404


def test_polling_gets_304_until_something_changes(server: ServerProcess) -> None:
    backend, run, tasks = write_run(server.home, 3)
    try:
        for path in (f"/api/ui/flow_runs/{run.id}/graph", f"/api/ui/flow_runs/{run.id}/task_runs",
                     f"/api/ui/flow_runs/{run.id}", "/api/ui/flow_runs?flow_name=etl"):  # fmt: skip
            status, headers, body = fetch(server.url + path)
            assert status == 200, body
            etag = headers["etag"]
            again = fetch(server.url + path, {"If-None-Match": etag})
            assert again[0] == 304 and again[2] == b""
            tasks[0].apply(State(StateType.COMPLETED))
            backend.write_task_run(tasks[0])
            run.apply(State(StateType.COMPLETED))
            backend.write_flow_run(run)
            backend.flush()
            changed = fetch(server.url + path, {"If-None-Match": etag})
            assert changed[0] == 200 and changed[1]["etag"] != etag
    finally:
        backend.close()


def test_bad_queries_get_clear_errors(server: ServerProcess) -> None:
    assert fetch(server.url + "/api/ui/dashboard?range=2y")[0] == 422
    status, _, body = fetch(server.url + "/api/ui/flow_runs/no-such-run/graph")
    assert status == 404 and "no-such-run" in json.loads(body)["detail"]
    assert fetch(server.url + "/api/ui/task_runs/nope")[0] == 404
    assert fetch(server.url + "/api/ui/flow_runs?limit=0")[0] == 422
    features = json.loads(fetch(server.url + "/api/ui/features")[2])
    # Routers included into the app count (FastAPI 0.12x+ keeps them as one route each).
    assert features == {"resume": True, "deployments": True, "work_pools": True}


def test_with_a_key_pages_load_but_data_needs_it(keyed: ServerProcess) -> None:
    status, _, body = fetch(keyed.url + "/runs")
    assert status == 200 and b"API key needed" in body
    assert fetch(keyed.url + "/ui-static/core.js")[0] == 200
    assert fetch(keyed.url + "/api/ui/dashboard")[0] == 401
    assert fetch(keyed.url + "/api/ui/dashboard", {"Authorization": "Bearer wrong"})[0] == 401
    ok: Any = fetch(keyed.url + "/api/ui/dashboard", {"Authorization": f"Bearer {KEY}"})
    assert ok[0] == 200 and "buckets" in json.loads(ok[2])


def test_optional_pages_and_features_follow_the_api(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from sluice.server.api import ui_data
    from sluice.server.ui.routes import PAGES, Page, mount_ui

    def build(with_api: bool) -> TestClient:
        app = FastAPI()
        ui_data.router.add_to(app.router, "/api")
        if with_api:
            # Stand-ins for APIs other parts of Sluice add: only their paths matter here.
            app.add_api_route("/api/deployments", lambda: [], methods=["GET"])
            app.add_api_route("/api/extra", lambda: [], methods=["GET"])
            app.add_api_route("/api/flow_runs/{run_id}/resume", lambda: {}, methods=["POST"])
        extra = Page("/extra", "dashboard", "Extra", requires="/api/extra")
        mount_ui(app, "test", (*PAGES, extra))
        return TestClient(app)

    without, with_ = build(False), build(True)
    assert "Deployments" not in without.get("/").text
    assert without.get("/deployments").status_code == 404
    assert without.get("/api/ui/features").json()["resume"] is False
    assert ">Deployments</a>" in with_.get("/").text
    assert with_.get("/deployments").status_code == 200
    assert with_.get("/deployments/some-flow/some-name").status_code == 200
    assert without.get("/extra").status_code == 404 and with_.get("/extra").status_code == 200
    assert "Work pools" not in with_.get("/").text  # its API is not there
    assert with_.get("/api/ui/features").json() == {
        "resume": True, "deployments": True, "work_pools": False,
    }  # fmt: skip
