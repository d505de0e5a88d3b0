"""Another site's page cannot change anything on a keyless server (real Chromium).

A second tiny HTTP server on another port serves an attacker's page that
tries every request a page can make a browser send without asking: fetches
in ``no-cors`` mode (POST without a body, with ``text/plain``, with a typeless
Blob), form posts of each encoding (one crafted to carry JSON as
``text/plain``), ``sendBeacon``, and CORS requests (PUT, PATCH, DELETE, JSON
POST) that need a preflight. It aims at every state-changing endpoint the UI
uses and at ``/api/ingest``. Afterwards the store holds exactly what it held.

DNS rebinding: a name the attacker controls resolving to 127.0.0.1 makes its
page same-origin with the server; the ``Host`` header still names the
attacker, and every request carrying it is refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.schemas import FlowRunRecord, new_id
from sluice.states import State, StateType
from tests.server_helpers import Write, flow_run, ingest_batch, payload
from tests.server_process import ServerProcess
from tests.ui_browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, needs_chromium]

DEPLOYMENT = {
    "name": "d",
    "flow_name": "f",
    "entrypoint": "f.py:f",
    "work_pool_name": "pool",
    "schedules": [{"kind": "interval", "interval": 3600.0, "timezone": "UTC"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # No scheduler pass during the test: only an attack could add runs.
    home = tmp_path_factory.mktemp("cross-site") / "home"
    process = ServerProcess(home, env={"SLUICE_SCHEDULER_INTERVAL": "86400"})
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def targets(server: ServerProcess) -> dict[str, str]:
    """A Running run (to cancel), a Failed deployment run (to resume), a deployment
    and a pool (to pause, run, backfill, reschedule, delete)."""
    with httpx.Client(base_url=server.url) as http:
        assert http.put("/api/deployments", json=DEPLOYMENT).status_code == 200
        dep = http.get("/api/deployments/f/d").json()
        running, running_write = flow_run(StateType.RUNNING)
        failed = FlowRunRecord(
            id=new_id(), flow_name="f", name="failed", entrypoint="f.py:f",
            deployment_id=dep["id"], work_pool_name="pool", work_queue_name="default",
        )  # fmt: skip
        failed.apply(State(StateType.FAILED))
        batch = payload(ingest_batch(flow_runs=[running_write, Write(failed)]))
        assert http.post("/api/ingest", json=batch).status_code == 202
    return {"running": running.id, "failed": failed.id}


def snapshot(server: ServerProcess) -> dict[str, Any]:
    """Everything an attack could change, as the API shows it."""
    with httpx.Client(base_url=server.url) as http:
        runs = http.get("/api/flow_runs", params={"limit": 1000}).json()
        return {
            "runs": sorted((r["id"], r["state_type"], r["state_name"]) for r in runs),
            "deployment": {
                k: v for k, v in http.get("/api/deployments/f/d").json().items() if k != "updated"
            },
            "pools": http.get("/api/work_pools").json(),
            "queues": http.get("/api/work_pools/pool/queues").json(),
            "flows": http.get("/api/flows").json(),
        }


def attack_page(sluice: str, targets: dict[str, str]) -> str:
    """The attacker's page: every kind of request at every state-changing endpoint."""
    running, failed = targets["running"], targets["failed"]
    injected, _ = flow_run(StateType.COMPLETED, flow_name="injected")
    injected_batch = json.dumps(payload(ingest_batch(flow_runs=[Write(injected)])))
    # name + "=" + value as a text/plain form sends it: {"flow_runs": [...], "pad": "="}
    form_json_name = injected_batch[:-1] + ', "pad": "'
    posts = [  # (path, JSON body or None)
        (f"/api/flow_runs/{running}/cancel", None),
        (f"/api/flow_runs/{failed}/resume", "{}"),
        ("/api/ingest", injected_batch),
        ("/api/deployments/f/d/runs", '{"parameters": {}}'),
        ("/api/ui/deployments/f/d/runs", '{"parameters": {}}'),
        ("/api/ui/deployments/f/d/backfill",
         '{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T05:00:00Z"}'),
        ("/api/work_pools", '{"name": "evil-pool"}'),
        ("/api/work_pools/pool/queues", '{"name": "evil", "pool_name": "pool"}'),
        ("/api/claims", '{"pool_name": "pool", "worker_name": "evil", "limit": 10}'),
        ("/api/flow_runs/mark_lapsed",
         '{"heartbeat_before": "2999-01-01T00:00:00Z", "now": "2999-01-01T00:00:00Z"}'),
    ]  # fmt: skip
    others = [  # (method, path, body): need a CORS preflight, which is never granted
        ("PATCH", "/api/deployments/f/d", '{"paused": true}'),
        ("PATCH", "/api/work_pools/pool", '{"paused": true}'),
        ("PUT", "/api/ui/deployments/f/d/schedules", '{"schedules": []}'),
        ("PUT", "/api/deployments", json.dumps({**DEPLOYMENT, "name": "evil"})),
        ("DELETE", "/api/deployments/f/d", None),
        ("DELETE", "/api/work_pools/pool/queues/default", None),
        ("POST", f"/api/flow_runs/{running}/cancel", "{}"),
    ]
    config = json.dumps({"sluice": sluice, "posts": posts, "others": others,
                         "formJsonName": form_json_name})  # fmt: skip
    return ATTACK_PAGE.replace("__CONFIG__", config)


ATTACK_PAGE = """<!doctype html>
<html><head><title>loading</title></head><body>
<script>
const C = __CONFIG__;
const tried = [];
function attempt(label, promise) {
  return promise.then(() => tried.push(label + ": sent"),
                      (e) => tried.push(label + ": " + e));
}
function viaForm(label, path, enctype, fields) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = "f" + tried.length + Math.random().toString(36).slice(2);
    document.body.appendChild(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.action = C.sluice + path; form.target = frame.name;
    form.enctype = enctype;
    for (const [name, value] of fields) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value;
      form.appendChild(input);
    }
    document.body.appendChild(form);
    // The frame loads once the answer (whatever it is) has arrived.
    frame.addEventListener("load", () => { tried.push(label + ": answered"); resolve(); },
                           { once: true });
    form.submit();
  });
}
const beacons = [];
function beacon(url, ...body) {
  // Fire and forget: tagged, so the test can wait until each one has arrived.
  const tag = "beacon-" + beacons.length;
  if (!navigator.sendBeacon(url + "?tag=" + tag, ...body)) return Promise.reject("not queued");
  beacons.push(tag);
  return Promise.resolve();
}
async function main() {
  const jobs = [];
  for (const [path, body] of C.posts) {
    const url = C.sluice + path;
    const simple = { method: "POST", mode: "no-cors", credentials: "include" };
    jobs.push(attempt("no body " + path, fetch(url, simple)));
    if (body !== null) {
      jobs.push(attempt("text/plain " + path,
        fetch(url, { ...simple, body, headers: { "Content-Type": "text/plain" } })));
      jobs.push(attempt("typeless blob " + path,
        fetch(url, { ...simple, body: new Blob([body]) })));
      jobs.push(attempt("cors json " + path,
        fetch(url, { method: "POST", body, headers: { "Content-Type": "application/json" } })));
      jobs.push(attempt("beacon " + path, beacon(url, body)));
    }
    jobs.push(attempt("empty beacon " + path, beacon(url)));
    jobs.push(viaForm("urlencoded form " + path, path, "application/x-www-form-urlencoded",
                      [["x", body || ""]]));
    jobs.push(viaForm("multipart form " + path, path, "multipart/form-data",
                      [["x", body || ""]]));
    jobs.push(viaForm("text/plain form " + path, path, "text/plain",
                      [[path === "/api/ingest" ? C.formJsonName : "x", body || ""]]));
  }
  for (const [method, path, body] of C.others) {
    const init = { method, headers: { "Content-Type": "application/json" } };
    if (body !== null) init.body = body;
    jobs.push(attempt(method + " " + path, fetch(C.sluice + path, init)));
    jobs.push(attempt("no-cors " + method + " " + path,
      fetch(C.sluice + path, { ...init, mode: "no-cors" })));
  }
  await Promise.all(jobs);
  window.tried = tried;
  window.beacons = beacons;
  document.title = "done";
}
main();
</script></body></html>"""


class _AttackHandler(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[tuple[ThreadingHTTPServer, type[_AttackHandler]]]:
    handler = type("Handler", (_AttackHandler,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def wait_until_received(server: ServerProcess, tags: list[str]) -> None:
    """Wait until the server's access log shows each tagged request (beacons are
    sent in the background: the page cannot tell when they arrive)."""
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        log = server.log_path.read_text(errors="replace")
        missing = [tag for tag in tags if f"?tag={tag} " not in log]
        if not missing:
            return
        time.sleep(0.05)
    raise AssertionError(f"beacons never arrived: {missing}")


@pytest.mark.parametrize("attacker_host", ["127.0.0.1", "attacker.example"])
def test_a_cross_origin_page_changes_nothing(
    server: ServerProcess,
    targets: dict[str, str],
    attacker: tuple[ThreadingHTTPServer, type[_AttackHandler]],
    attacker_host: str,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    httpd, handler = attacker
    handler.page = attack_page(server.url, targets).encode()
    before = snapshot(server)
    assert ("FAILED" in {s for _, s, _ in before["runs"]}) and len(before["runs"]) == 2
    # attacker.example resolves to 127.0.0.1 (another site); 127.0.0.1 on another
    # port is another origin of the same site.
    rules = "MAP attacker.example 127.0.0.1"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"]
        )
        try:
            page = browser.new_page()
            page.goto(f"http://{attacker_host}:{httpd.server_port}/")
            page.wait_for_function("document.title === 'done'", timeout=60_000)
            tried = page.evaluate("window.tried")
            beacons = page.evaluate("window.beacons")
            wait_until_received(server, beacons)
        finally:
            browser.close()
    # Every attempt settled: 9 POSTs with a body x 9 ways, cancel x 5, 7 others x 2.
    assert len(tried) == 100, tried
    after = snapshot(server)
    assert after == before, server.log()
    assert "Traceback" not in server.log()


def test_a_rebound_name_is_refused(server: ServerProcess, targets: dict[str, str]) -> None:
    """Chromium loads http://evil.example:<port>/ from the server itself (evil.example
    resolves to 127.0.0.1): the page, and each request it would make, is refused."""
    from playwright.sync_api import sync_playwright

    rebound = f"http://evil.example:{server.port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"],
        )
        try:
            page = browser.new_page()
            response = page.goto(f"{rebound}/runs")
            assert response is not None and response.status == 400
            assert "is not a name this server is reached by" in page.content()
            response = page.goto(f"{rebound}/api/flow_runs")
            assert response is not None and response.status == 400
        finally:
            browser.close()
    before = snapshot(server)
    with httpx.Client(base_url=server.url) as http:
        evil = {"Host": f"evil.example:{server.port}"}
        for method, path in [("GET", "/api/flow_runs"), ("GET", "/"), ("GET", "/api/health"),
                             ("POST", f"/api/flow_runs/{targets['running']}/cancel")]:  # fmt: skip
            assert http.request(method, path, headers=evil).status_code == 400
        # The names the server is reached by still work.
        for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]", "127.0.0.2"):
            assert http.get("/api/health", headers={"Host": host}).status_code == 200, host
    assert snapshot(server) == before


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ServerProcess]:
    """A keyless server on 127.0.0.1 that also serves sluice.example.com (any port)
    and lan-box:8080, as a reverse proxy or a LAN name would reach it."""
    env = {"SLUICE_SERVER_ALLOWED_HOSTS": "sluice.example.com, lan-box:8080"}
    process = ServerProcess(tmp_path / "home", env=env)
    process.start()
    yield process
    process.stop()


def test_each_refusal_names_its_reason(fresh: ServerProcess) -> None:
    run, write = flow_run(StateType.RUNNING)
    batch = json.dumps(payload(ingest_batch(flow_runs=[write]))).encode()
    cancel = f"/api/flow_runs/{run.id}/cancel"
    with httpx.Client(base_url=fresh.url) as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "application/xml"):  # fmt: skip
            refused = http.post(
                "/api/ingest", content=batch, headers={"Content-Type": content_type}
            )
            assert refused.status_code == 415, content_type
            assert "requests that change state send application/json" in refused.json()["detail"]
        refused = http.post("/api/ingest", content=batch)  # a body without a type
        assert refused.status_code == 415
        assert refused.json()["detail"] == "A request body needs Content-Type: application/json"
        charset = {"Content-Type": "application/json; charset=utf-8"}
        assert http.post("/api/ingest", content=batch, headers=charset).status_code == 202
        for origin in ("http://127.0.0.1:1", "http://evil.example", "null"):
            refused = http.post(cancel, headers={"Origin": origin})
            assert refused.status_code == 403, origin
            assert refused.json()["detail"].startswith("Cross-site request refused: Origin")
        refused = http.post(cancel, headers={"Sec-Fetch-Site": "same-site"})
        assert refused.status_code == 403
        refused = http.post(cancel, headers={"Content-Type": "text/plain"})  # no body, still
        assert refused.status_code == 415
        assert http.get(f"/api/flow_runs/{run.id}").json()["state_type"] == "RUNNING"
        # The UI's own requests: same origin, JSON or no body at all.
        same = {"Origin": fresh.url, "Sec-Fetch-Site": "same-origin"}
        assert http.post(cancel, headers=same).json()["state_type"] == "CANCELLING"
        # A configured name: as Host (a LAN name) and as Origin (a proxy keeping Host).
        proxied = {"Host": "sluice.example.com", "Origin": "https://sluice.example.com"}
        assert http.get("/api/health", headers=proxied).status_code == 200
        assert http.put("/api/deployments", json=DEPLOYMENT, headers=proxied).status_code == 200
        rewritten = {"Origin": "http://lan-box:8080"}  # a proxy rewriting Host to ours
        patched = http.patch("/api/deployments/f/d", json={"paused": True}, headers=rewritten)
        assert patched.status_code == 200 and patched.json()["paused"] is True
        refused = http.get("/api/health", headers={"Host": "lan-box:9090"})
        assert refused.status_code == 400
        assert "SLUICE_SERVER_ALLOWED_HOSTS" in refused.json()["detail"]
    assert "Traceback" not in fresh.log()


def test_a_keyed_server_refuses_cross_site_before_asking_for_the_key(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "home", env={"SLUICE_API_KEY": "k"})
    process.start()
    try:
        with httpx.Client(base_url=process.url) as http:
            key = {"Authorization": "Bearer k"}
            refused = http.post("/api/ingest", content=b"{}", headers={**key, "Origin": "null"})
            assert refused.status_code == 403
            assert http.post("/api/ingest", json={}, headers=key).status_code == 202
            assert http.post("/api/ingest", json={}).status_code == 401
    finally:
        process.stop()
