"""The deployments and work pools pages in a real Chromium, against a real server
and a real ``sluice worker start`` subprocess that executes the runs the pages start.

One server, one worker and one browser per module; a fresh page per test. Every
test also fails on an uncaught JavaScript error or any dialog (the hostile
deployment would open one if its text ever became markup).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess
from tests.test_ui_pages import Watched
from tests.ui_browser import chromium, client_env, get_json, needs_chromium, screenshot
from tests.worker_helpers import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, needs_chromium]

POOL = "ui-pool"
WORKER = "ui-worker"
HOSTILE = "<img src=x onerror=alert(1)>"
FLOWS = """
from pathlib import Path
from typing import Literal

from sluice import flow, task


@flow
def greet(
    name: str,
    times: int = 2,
    ratio: float = 0.5,
    loud: bool = False,
    mode: Literal["short", "long"] = "short",
    items: list[int] = [1, 2],
) -> str:
    return name * times


@task
def step(folder: str, label: str) -> str:
    with open(Path(folder) / "steps.log", "a") as f:
        f.write(label + "\\n")
    return label


@task
def gate(folder: str) -> str:
    if Path(folder, "FAIL").exists():
        raise RuntimeError("the FAIL file is there")
    return "passed"


@flow
def flaky(folder: str) -> str:
    first = step(folder, "first")
    return gate(folder) + first


def _count(folder: str, label: str) -> None:
    with open(Path(folder) / "calls.log", "a") as f:
        f.write(label + "\\n")


@task
def load(folder: str) -> int:
    _count(folder, "load")
    return 1


@task(name="<img src=x onerror=alert(1)>")
def shape(folder: str, x: int) -> int:
    _count(folder, "shape")
    return x + 1


@task
def publish(folder: str, x: int) -> int:
    _count(folder, "publish")
    if Path(folder, "FAIL_PUBLISH").exists():
        raise RuntimeError("the FAIL_PUBLISH file is there")
    return x * 10


@flow
def pipeline(folder: str) -> int:
    return publish(folder, shape(folder, shape(folder, load(folder))))
"""


class Setup:
    """The module's server, worker, project folder and an HTTP client of the server."""

    def __init__(self, server: ServerProcess, worker: WorkerProcess, project: Path) -> None:
        self.server = server
        self.worker = worker
        self.project = project

    def send(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def runs(self, deployment: str) -> list[dict[str, Any]]:
        return list(get_json(self.server, f"/api/deployments/{deployment}/runs?limit=1000"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from sluice.backend.http import HttpBackend
    from sluice.deployments.specs import DeploymentSpec
    from sluice.settings import Settings

    root = tmp_path_factory.mktemp("ui-deployments")
    project = root / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOWS)
    # A horizon of days: the daily schedule's next runs exist at once.
    planning = {"SLUICE_SCHEDULER_INTERVAL": "0.5", "SLUICE_SCHEDULER_HORIZON": str(3 * 86400)}
    server = ServerProcess(root / "server", env=planning)
    server.start()
    client = HttpBackend(Settings(home=root / "client", api_url=server.url))
    specs = [
        ("greet", "main", {"cron": "0 6 * * *", "timezone": "Europe/London",
                           "parameters": {"name": "Ada"}}),
        ("greet", "hourly", {"cron": "0 * * * *", "parameters": {"name": "Bo"}}),
        ("flaky", "resumable", {"parameters": {"folder": str(project)}}),
        ("pipeline", "from-task", {"parameters": {"folder": str(project)}}),
    ]  # fmt: skip
    for flow, name, options in specs:
        DeploymentSpec(
            name=name, entrypoint=f"flows.py:{flow}", working_dir=str(project),
            options={"work_pool_name": POOL, "description": f"{flow} for the UI tests", **options},
        ).apply(client)  # fmt: skip
    client.close()
    env = client_env(server, root / "worker-home")
    worker = WorkerProcess(
        POOL, root / "worker.log", "--name", WORKER, "--poll-interval", "0.2", env=env
    )
    yield Setup(server, worker, project)
    worker.kill()
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="UTC")
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.errors == [], watched.errors
    assert watched.dialogs == [], watched.dialogs


def test_deployments_page_lists_schedules_pools_and_next_runs(
    setup: Setup, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{setup.server.url}/deployments")
    row = page.locator("#deployments tr[data-deployment='greet/main']")
    expect(row).to_contain_text("cron '0 6 * * *' (Europe/London)")
    expect(row.locator(".pill")).to_have_text("ready")
    expect(row).to_contain_text(f"{POOL} / default")
    expect(page.locator("#deployments tr[data-deployment='flaky/resumable']")).to_contain_text(
        "no schedule"
    )
    # The server's scheduler plans the daily runs: the next one is listed.
    expect(row.locator("td").nth(4).locator("a").first).to_be_visible()
    expect(page.locator("header nav")).to_contain_text("Deployments")
    screenshot(page, "deployments")
    row.locator("a", has_text="greet/main").click()
    expect(page.locator("#title")).to_have_text("greet/main")
    expect(page.locator("#schedules")).to_contain_text("cron '0 6 * * *' (Europe/London)")
    expect(page.locator("#upcoming tbody tr").first).to_be_visible()
    screenshot(page, "deployment")


def test_run_form_widgets_follow_the_schema_and_a_worker_completes_the_run(
    setup: Setup, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{setup.server.url}/deployments/greet/main")
    form = page.locator("#run-form")
    name = form.locator("[data-param=name]")
    expect(name).to_have_attribute("type", "text")
    expect(name).to_have_value("Ada")  # the deployment's default
    expect(form.locator("label", has_text="name").locator(".req")).to_have_count(1)
    expect(form.locator("label", has_text="times").locator(".req")).to_have_count(0)
    expect(form.locator("[data-param=times]")).to_have_attribute("step", "1")
    expect(form.locator("[data-param=times]")).to_have_value("2")
    expect(form.locator("[data-param=ratio]")).to_have_attribute("step", "any")
    assert form.locator("[data-param=loud]").evaluate("e => e.tagName") == "SELECT"
    assert form.locator("[data-param=mode] option").all_text_contents() == ["—", "short", "long"]
    assert json.loads(form.locator("[data-param=items]").input_value()) == [1, 2]
    name.fill("Cy")
    form.locator("[data-param=times]").fill("3")
    form.locator("[data-param=mode]").select_option(label="long")
    form.locator("[data-param=items]").fill("[4, 5]")
    form.locator("button[type=submit]").click()
    created = page.locator("#created-run")
    expect(created).to_be_visible()
    run_id = setup.runs("greet/main")  # the created run is listed by the API with its values
    made = [r for r in run_id if r["name"] == created.text_content()]
    assert made and made[0]["parameters"]["times"] == 3 and made[0]["parameters"]["mode"] == "long"
    assert made[0]["parameters"]["items"] == [4, 5]
    # The worker runs it; the page's recent runs update live to Completed.
    recent = page.locator(f"#recent tr[data-run='{made[0]['id']}'] .badge")
    expect(recent).to_have_text("Completed", timeout=60_000)


def test_a_bad_parameter_is_shown_at_its_field_and_creates_nothing(
    setup: Setup, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{setup.server.url}/deployments/greet/main")
    form = page.locator("#run-form")
    expect(form.locator("[data-param=times]")).to_be_visible()
    before = len(setup.runs("greet/main"))
    form.locator("[data-param=times]").fill("2.5")  # not an integer: the server says so
    form.locator("button[type=submit]").click()
    error = form.locator("[data-error-for=times]")
    expect(error).not_to_be_empty()
    expect(form.locator("[data-param=times]")).to_have_class("invalid")
    expect(page.locator("#run-result .error")).to_contain_text("Not created")
    expect(form.locator("[data-error-for=name]")).to_be_empty()
    form.locator("[data-param=times]").fill("2")
    form.locator("[data-param=items]").fill("[1,")  # not JSON: refused before any request
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-error-for=items]")).to_contain_text("not valid JSON")
    expect(form.locator("[data-error-for=times]")).to_be_empty()
    assert len(setup.runs("greet/main")) == before


def test_pause_and_resume_a_deployment(setup: Setup, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{setup.server.url}/deployments/greet/main")
    toggle = page.locator("#toggle-pause")
    expect(toggle).to_have_text("Pause")
    toggle.click()
    expect(page.locator("#status .pill")).to_have_text("paused")
    expect(toggle).to_have_text("Resume schedule")
    assert get_json(setup.server, "/api/deployments/greet/main")["paused"] is True
    toggle.click()
    expect(page.locator("#status .pill")).to_have_text("ready")
    assert get_json(setup.server, "/api/deployments/greet/main")["paused"] is False


def test_backfill_form_creates_one_run_per_tick_once(setup: Setup, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = hour - dt.timedelta(hours=3, minutes=-30)  # ticks at hour-2h and hour-1h
    end = hour - dt.timedelta(minutes=30)
    page.goto(f"{setup.server.url}/deployments/greet/hourly")
    page.fill("#bf-start", start.strftime("%Y-%m-%dT%H:%M:%S"))  # the browser runs in UTC
    page.fill("#bf-end", end.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#bf-submit")
    expect(page.locator("#backfill-result")).to_contain_text("Created 2 runs for 2 schedule ticks")
    backfilled = [r for r in setup.runs("greet/hourly") if "backfill" in r["tags"]]
    assert len(backfilled) == 2
    page.click("#bf-submit")  # the same range again: nothing new
    expect(page.locator("#backfill-result")).to_contain_text("Created 0 runs for 2 schedule ticks")
    expect(page.locator("#recent tr[data-run] .badge", has_text="Completed")).to_have_count(
        2, timeout=60_000
    )
    page.fill("#bf-end", (start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#bf-submit")
    expect(page.locator("#backfill-result .error")).to_contain_text("before its start")
    # With max active, the server creates the runs one at a time in the background.
    page.fill("#bf-start", (start - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#bf-end", (end - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#bf-max", "1")
    page.click("#bf-submit")
    expect(page.locator("#backfill-result")).to_contain_text("2 schedule ticks: their runs are")

    def all_four_completed() -> bool:
        runs = [r for r in setup.runs("greet/hourly") if "backfill" in r["tags"]]
        return len(runs) == 4 and all(r["state_type"] == "COMPLETED" for r in runs)

    wait_for(all_four_completed, 60, "the background backfill's runs to complete", poll=0.3)


def test_form_endpoints_refuse_clearly(setup: Setup) -> None:
    import urllib.error

    def refused(path: str, body: Any) -> tuple[int, Any]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            setup.send("POST", path, body)
        return caught.value.code, json.loads(caught.value.read())

    status, body = refused("/api/ui/deployments/greet/main/runs", {"parameters": {"times": "x"}})
    assert status == 422 and [f["field"] for f in body["fields"]] == ["times"]
    assert "times" in body["detail"]
    status, body = refused("/api/ui/deployments/greet/main/runs", {"parameters": {"nope": 1}})
    assert status == 422 and body["fields"][0]["field"] == "nope"
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    status, body = refused("/api/ui/deployments/flaky/resumable/backfill", window)
    assert status == 422 and "no schedule" in body["detail"]
    status, body = refused("/api/ui/deployments/greet/hourly/backfill", {**window, "end": "x"})
    assert status == 422
    wide = {"start": "2000-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    status, body = refused("/api/ui/deployments/greet/hourly/backfill", wide)
    assert status == 422 and "at most 10000" in body["detail"]
    status, body = refused("/api/ui/deployments/greet/nope/runs", {"parameters": {}})
    assert status == 404


def test_work_pools_page_shows_the_worker_online_and_pauses_the_pool(
    setup: Setup, watched: Watched
) -> None:
    from playwright.sync_api import expect

    workers = f"/api/work_pools/{POOL}/workers"
    setup.send("POST", workers, {"name": "silent", "now": "2000-01-01T00:00:00Z"})
    setup.send("POST", workers, {"name": "done", "status": "STOPPED"})
    page = watched.page
    page.goto(f"{setup.server.url}/work-pools")
    pool = page.locator(f"section.pool[data-pool='{POOL}']")
    expect(pool.locator("tr[data-worker=silent] .worker-status")).to_have_text("offline")
    expect(pool.locator("tr[data-worker=done] .worker-status")).to_have_text("stopped")
    expect(pool.locator(f"tr[data-worker='{WORKER}'] .worker-status")).to_have_text(
        "online", timeout=30_000
    )
    expect(pool.locator("tr[data-queue=default] td").nth(1)).to_have_text("1")
    # The daily runs the scheduler planned wait for their time, not for a worker.
    expect(pool.locator("tr[data-queue=default] .depth")).to_have_text("0")
    expect(pool.locator("tr[data-queue=default] .later")).not_to_have_text("0")
    screenshot(page, "work-pools")
    pool.locator(".toggle-pool").click()
    expect(pool.locator(".actions .pill")).to_have_text("paused")
    assert get_json(setup.server, f"/api/work_pools/{POOL}")["paused"] is True
    pool.locator(".toggle-pool").click()
    expect(pool.locator(".actions .pill")).to_have_text("ready")
    page.goto(f"{setup.server.url}/")
    expect(page.locator(f"#workers li[data-worker='{WORKER}']")).to_contain_text(POOL)
    expect(page.locator("#workers li")).to_have_count(1)  # not the silent or stopped ones


def test_resume_a_failed_deployment_run_from_its_page(setup: Setup, watched: Watched) -> None:
    from playwright.sync_api import expect

    (setup.project / "FAIL").write_text("x")
    run = setup.send("POST", "/api/deployments/flaky/resumable/runs", {})
    page = watched.page
    page.goto(f"{setup.server.url}/runs/{run['id']}")
    expect(page.locator("#title .badge")).to_have_text("Failed", timeout=60_000)
    (setup.project / "FAIL").unlink()
    # Clicked as soon as Failed shows: the attempt's process may still be
    # exiting, and the worker must not take the requeued run for a crash.
    page.locator("#resume").click()
    expect(page.locator("#action-result")).to_contain_text("AwaitingResume")
    try:
        expect(page.locator("#title .badge")).to_have_text("Completed", timeout=60_000)
    except AssertionError:
        states = get_json(setup.server, f"/api/ui/flow_runs/{run['id']}")["states"]
        raise AssertionError(f"{states}\n{setup.worker.log()}") from None
    expect(page.locator("#resume")).to_have_count(0)
    first = page.locator("#task-runs tbody tr", has_text="step")
    expect(first.locator(".mark")).to_have_text("Replayed")
    # The first attempt's step was replayed from the journal, not run again.
    assert (setup.project / "steps.log").read_text().split() == ["first"]


def test_resume_a_failed_deployment_run_from_a_chosen_task(setup: Setup, watched: Watched) -> None:
    from playwright.sync_api import expect

    (setup.project / "FAIL_PUBLISH").write_text("x")
    run = setup.send("POST", "/api/deployments/pipeline/from-task/runs", {})
    page = watched.page
    page.goto(f"{setup.server.url}/runs/{run['id']}")
    expect(page.locator("#title .badge")).to_have_text("Failed", timeout=60_000)
    calls = setup.project / "calls.log"
    assert calls.read_text().split() == ["load", "shape", "shape", "publish"]
    (setup.project / "FAIL_PUBLISH").unlink()
    # Every badge the title shows from now on, to see the run move live.
    page.evaluate(
        """() => { window.__seen = [];
        new MutationObserver(() => { const b = document.querySelector('#title .badge');
          if (b && window.__seen.at(-1) !== b.textContent) window.__seen.push(b.textContent); })
        .observe(document.getElementById('title'), { childList: true, subtree: true }); }"""
    )
    # The second call of the task whose name is markup: shown as text, sent as its key.
    key = f"{HOSTILE}:1"
    expect(page.locator("button.resume-from")).to_have_count(4)
    page.locator(f"button.resume-from[data-task='{key}']").click()
    panel = page.locator("#resume-from")
    expect(panel).to_contain_text(f"call 1 of task {HOSTILE}")
    expect(page.locator("#resume-from-command")).to_have_count(0)  # a worker can take it
    screenshot(page, "flow-run-resume-from")
    page.locator("#resume-from-confirm").click()
    expect(page.locator("#action-result")).to_contain_text(f"from task {key}")
    expect(page.locator("#action-result")).to_contain_text("AwaitingResume")
    expect(panel).to_be_hidden()
    try:
        expect(page.locator("#title .badge")).to_have_text("Completed", timeout=60_000)
    except AssertionError:
        states = get_json(setup.server, f"/api/ui/flow_runs/{run['id']}")["states"]
        raise AssertionError(f"{states}\n{setup.worker.log()}") from None
    seen = page.evaluate("window.__seen")
    assert seen[-1] == "Completed", seen
    assert {"AwaitingResume", "Pending", "Running"} & set(seen), seen
    expect(page.locator("button.resume-from")).to_have_count(0)
    expect(page.locator("#task-runs th.resume-col")).to_be_hidden()
    # load and the first shape were replayed; the chosen call and publish ran again.
    assert calls.read_text().split()[4:] == ["shape", "publish"]
    rows = page.locator("#task-runs tbody tr")
    expect(rows.filter(has_text="load").locator(".mark")).to_have_text("Replayed")
    expect(rows.filter(has_text=HOSTILE).locator(".mark", has_text="Replayed")).to_have_count(1)
    screenshot(page, "flow-run-resumed-from-task")
    page.click("#tabs a[data-tab=details]")
    expect(page.locator("#states")).to_contain_text(f"Resume requested from task '{key}'")
    assert page.locator("img").count() == 0


def test_edit_schedules_from_the_deployments_page(setup: Setup, watched: Watched) -> None:
    from playwright.sync_api import expect

    # The editor does not show a schedule's own parameters and slug; a save keeps them.
    london = {
        "kind": "cron", "cron": "0 6 * * *", "timezone": "Europe/London",
        "parameters": {"name": "Lon"}, "slug": "london",
    }  # fmt: skip
    setup.send(
        "PUT",
        "/api/deployments",
        {
            "name": "editable", "flow_name": "greet", "entrypoint": "flows.py:greet",
            "parameters": {"name": "Ed"}, "schedules": [london], "work_pool_name": POOL,
            "paused": True,
        },
    )  # fmt: skip
    page = watched.page
    page.goto(f"{setup.server.url}/deployments")
    page.locator("#deployments tr[data-deployment='greet/editable'] a.edit-schedules").click()
    form = page.locator("#schedules-form")
    expect(form).to_be_visible()
    rows = form.locator(".schedule-row")
    expect(rows).to_have_count(1)
    expect(rows.nth(0).locator("[data-field=value]")).to_have_value("0 6 * * *")
    expect(rows.nth(0).locator("[data-field=timezone]")).to_have_value("Europe/London")
    # Bad values: each problem under its own field, nothing saved.
    rows.nth(0).locator("[data-field=value]").fill("61 * * * *")
    page.click("#add-schedule")
    expect(rows).to_have_count(2)
    rows.nth(1).locator("[data-field=kind]").select_option("interval")
    rows.nth(1).locator("[data-field=value]").fill("1x")
    rows.nth(1).locator("[data-field=timezone]").fill(HOSTILE)
    page.click("#save-schedules")
    error = form.locator("[data-error-for='schedules.0.value']")
    expect(error).to_contain_text("minute 61 out of range 0-59")
    expect(rows.nth(0).locator("[data-field=value]")).to_have_class("invalid")
    expect(form.locator("[data-error-for='schedules.1.value']")).to_contain_text("90s, 15m")
    expect(form.locator("[data-error-for='schedules.1.timezone']")).to_contain_text(
        f"unknown timezone '{HOSTILE}'"
    )
    expect(form.locator("[data-error-for='schedules.0.timezone']")).to_be_empty()
    expect(page.locator("#schedules-result .error")).to_contain_text("fix the marked fields")
    assert page.locator("img").count() == 0
    stored = get_json(setup.server, "/api/deployments/greet/editable")
    assert stored["schedules"] == [{**london, "day_or": True}]
    screenshot(page, "deployment-schedules-editor")
    # Fixed: saved, and the page shows the new schedules in words.
    rows.nth(0).locator("[data-field=value]").fill("30 7 * * 1-5")
    rows.nth(1).locator("[data-field=value]").fill("2h")
    rows.nth(1).locator("[data-field=timezone]").fill("UTC")
    page.click("#save-schedules")
    expect(form).to_be_hidden()
    expect(page.locator("#action-result")).to_contain_text("Schedules saved (2)")
    expect(page.locator("#schedules")).to_contain_text(
        """cron '30 7 * * 1-5' (Europe/London) [london] with parameters {"name": "Lon"}"""
    )
    expect(page.locator("#schedules")).to_contain_text("every 2h from")
    stored = get_json(setup.server, "/api/deployments/greet/editable")
    assert [s["kind"] for s in stored["schedules"]] == ["cron", "interval"]
    assert stored["schedules"][0]["parameters"] == {"name": "Lon"}
    assert stored["schedules"][0]["slug"] == "london"
    assert stored["schedules"][1]["interval"] == 7200
    # Editing again starts from what is stored; removing a row drops that schedule.
    page.click("#edit-schedules")
    expect(rows.nth(1).locator("[data-field=value]")).to_have_value("2h")
    rows.nth(0).locator(".remove-schedule").click()
    expect(rows).to_have_count(1)
    page.click("#save-schedules")
    expect(page.locator("#schedules li")).to_have_count(1)
    expect(page.locator("#schedules")).to_contain_text("every 2h from")
    setup.send("DELETE", "/api/deployments/greet/editable")


def test_schedules_endpoint_refuses_clearly(setup: Setup) -> None:
    import urllib.error

    def refused(body: Any) -> tuple[int, Any]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            setup.send("PUT", "/api/ui/deployments/greet/hourly/schedules", body)
        return caught.value.code, json.loads(caught.value.read())

    bad = [
        {"kind": "cron", "value": "* * *"},
        {"kind": "rrule", "value": "FREQ=SOMETIMES", "timezone": "Nowhere/Land"},
    ]
    status, body = refused({"schedules": bad})
    assert status == 422
    assert [f["field"] for f in body["fields"]] == [
        "schedules.0.value", "schedules.1.timezone", "schedules.1.value",
    ]  # fmt: skip
    assert "expected 5 fields" in body["fields"][0]["message"]
    assert "schedules.1.value: " in body["detail"]
    status, body = refused({"schedules": [{"kind": "weekly", "value": "x"}]})
    assert status == 422  # not a kind: the request's shape is wrong
    status, body = refused({"schedules": [{"kind": "cron", "value": "0 * * * *", "x": 1}]})
    assert status == 422
    before = get_json(setup.server, "/api/deployments/greet/hourly")["schedules"]
    assert before == [{"kind": "cron", "cron": "0 * * * *", "timezone": "UTC", "day_or": True}]


def test_hostile_deployment_text_stays_text(setup: Setup, watched: Watched) -> None:
    from playwright.sync_api import expect

    schema = {
        "type": "object",
        "properties": {
            HOSTILE: {"type": "string", "description": HOSTILE},
            "pick": {"enum": [HOSTILE, "b"]},
        },
        "required": [HOSTILE],
    }
    setup.send(
        "PUT",
        "/api/deployments",
        {
            "name": HOSTILE, "flow_name": "greet", "entrypoint": "flows.py:greet",
            "description": HOSTILE, "tags": [HOSTILE], "parameter_schema": schema,
            "work_pool_name": POOL, "work_queue_name": HOSTILE, "paused": True,
        },
    )  # fmt: skip
    page = watched.page
    page.goto(f"{setup.server.url}/deployments")
    row = page.locator("#deployments tbody tr", has_text=f"greet/{HOSTILE}")
    expect(row).to_contain_text(HOSTILE)
    row.locator("a").first.click()
    expect(page.locator("#title")).to_have_text(f"greet/{HOSTILE}")
    expect(page.locator("#summary")).to_contain_text(HOSTILE)
    expect(page.locator("#run-form label").first).to_contain_text(HOSTILE)
    expect(page.locator("#run-form")).to_contain_text(HOSTILE)  # the description
    assert HOSTILE in page.locator("#run-form select option").all_text_contents()
    page.goto(f"{setup.server.url}/work-pools")
    expect(page.locator(f"section.pool[data-pool='{POOL}']")).to_contain_text(HOSTILE)
    assert page.locator("img").count() == 0
    setup.send("DELETE", "/api/deployments/greet/" + urllib.request.quote(HOSTILE, safe=""))
