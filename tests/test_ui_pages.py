"""The web UI in a real headless Chromium against a real server holding real runs.

One server per module, filled by running the flows of ``tests/ui_flows.py``
through it (client mode, in subprocesses); one browser per module, a fresh
page (and browser context, so no shared localStorage) per test. Every test
also fails on an uncaught JavaScript error or any dialog.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.server_process import ServerProcess
from tests.ui_browser import (
    chromium,
    get_json,
    needs_chromium,
    resume_run,
    run_flow,
    screenshot,
    start_flow,
    stop,
    wait_for_run,
)
from tests.ui_flows import XSS

pytestmark = [pytest.mark.integration, needs_chromium]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose store holds a demo run, a failed demo run, a hostile and a wide run."""
    root = tmp_path_factory.mktemp("ui")
    process = ServerProcess(root / "server")
    process.start()
    client = root / "client"
    # The two demo runs look up different keys: neither may hit the other's cache.
    flows = (("demo",), ("demo", "fail=true", "n=3", "key=beta"), ("hostile",), ("wide",))
    with ThreadPoolExecutor(len(flows)) as pool:  # independent processes: side by side
        outputs = list(pool.map(lambda args: run_flow(process, client, *args), flows))
    for output in outputs:
        assert "finished in state" in output, output
    failed = get_json(process, "/api/flow_runs?flow_name=ui-demo&state=FAILED")[0]
    output = resume_run(process, client, failed["id"])  # fails again, replaying what it can
    assert "finished in state Failed" in output, output
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Watched:
    """A page plus what it did that a test must not allow: dialogs and script errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.errors == [], watched.errors
    assert watched.dialogs == [], watched.dialogs


def run_of(server: ServerProcess, flow_name: str, state: str = "COMPLETED") -> dict[str, Any]:
    runs = get_json(server, f"/api/flow_runs?flow_name={flow_name}&state={state}&limit=1")
    assert runs, f"no {state} run of {flow_name}"
    return dict(runs[0])


def test_dashboard_charts_runs_and_lists_failures(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{server.url}/")
    expect(page.locator("#chart svg rect.bar").first).to_be_visible()
    bars = page.locator("#chart svg rect.bar")
    states = set(bars.evaluate_all("els => els.map(e => e.dataset.state)"))
    assert {"COMPLETED", "FAILED"} <= states
    failed = run_of(server, "ui-demo", "FAILED")
    expect(page.locator("#failures")).to_contain_text(failed["name"])
    expect(page.locator("#stats")).to_contain_text("failed or crashed")
    screenshot(page, "dashboard")
    page.click("#ranges button[data-range='1h']")
    expect(page.locator("#ranges button[data-range='1h']")).to_have_class("active")
    assert page.url.endswith("/?range=1h")
    expect(page.locator("#chart svg rect.bar").first).to_be_visible()


def test_runs_list_filters_and_pages(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{server.url}/runs")
    rows = page.locator("#runs tbody tr[data-id]")
    expect(rows).to_have_count(6)  # 2 demo runs, their 2 subflow runs, hostile and wide
    expect(page.locator("#page-info")).to_contain_text("of 6")
    screenshot(page, "runs")
    page.select_option("#f-flow", "ui-demo")
    expect(rows).to_have_count(2)
    page.select_option("#f-state", "FAILED")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-state", "FAILED")
    assert "flow_name=ui-demo" in page.url and "state=FAILED" in page.url
    page.select_option("#f-state", "")
    page.fill("#f-tag", "no-such-tag")
    page.click("#filters button[type=submit]")
    expect(page.locator("#runs tbody")).to_contain_text("No flow runs match")
    page.fill("#f-tag", "")
    page.select_option("#f-flow", "")
    page.select_option("#f-range", "1h")
    expect(rows).to_have_count(6)
    # Each row shows a duration, and a subflow run is marked as one.
    expect(page.locator("#runs tbody .mark", has_text="subflow")).to_have_count(2)


def test_flow_run_page_tasks_graph_timeline_logs(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    run = run_of(server, "ui-demo")
    page.goto(f"{server.url}/runs/{run['id']}")
    expect(page.locator("#title")).to_contain_text("ui-demo")
    expect(page.locator("#title .badge")).to_have_text("Completed")
    tasks = page.locator("#task-runs tbody tr[data-id]")
    expect(tasks).to_have_count(10)  # 6 squares, flaky, 2 lookups, the subflow call
    expect(page.locator("#task-runs")).to_contain_text("Cached")
    flaky = page.locator("#task-runs tbody tr", has_text="flaky")
    expect(flaky.locator("td").nth(5)).to_have_text("2")
    expect(flaky).to_contain_text("retried \u00d71")
    screenshot(page, "flow-run-tasks")

    page.click("#tabs a[data-tab=graph]")
    group = page.locator("#graph svg g.node[data-kind=map]")
    expect(group).to_have_count(1)
    expect(group).to_contain_text("\u00d76")
    expect(page.locator("#graph svg path.edge")).to_have_count(1)  # the squares feed flaky
    screenshot(page, "flow-run-graph")
    group.click()
    expect(page.locator("#graph svg g.node[data-kind=map]")).to_have_count(0)
    expect(page.locator("#graph svg g.node[data-kind=task]")).to_have_count(10)
    expect(page.locator("#graph svg path.edge")).to_have_count(6)

    page.click("#tabs a[data-tab=timeline]")
    expect(page.locator("#timeline svg g.bar-row")).to_have_count(9)  # the cached call never ran
    screenshot(page, "flow-run-timeline")

    page.click("#tabs a[data-tab=logs]")
    logs = page.locator("#logs .logs")
    expect(logs).to_contain_text("squaring 6 numbers")
    expect(logs).to_contain_text("a warning line")
    page.select_option("#logs .log-level", "30")
    expect(logs).not_to_contain_text("squaring 6 numbers")
    expect(logs).to_contain_text("a warning line")
    page.select_option("#logs .log-level", "0")
    page.fill("#logs .log-search", "SQUARING")
    expect(logs.locator(".line")).to_have_count(1)
    expect(logs).to_contain_text("squaring 6 numbers")
    screenshot(page, "flow-run-logs")

    page.click("#tabs a[data-tab=details]")
    expect(page.locator("#parameters")).to_contain_text('"n": 6')
    expect(page.locator("#result")).to_contain_text("55")
    expect(page.locator("#states tbody tr")).to_have_count(3)  # Pending, Running, Completed
    child = page.locator("#children a")
    expect(child).to_have_count(1)
    child.click()
    expect(page.locator("#title")).to_contain_text("child")
    expect(page.locator("#summary")).to_contain_text(run["name"])  # the parent link


def test_task_run_page_shows_each_attempt_and_result(
    server: ServerProcess, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    run = run_of(server, "ui-demo")
    page.goto(f"{server.url}/runs/{run['id']}")
    page.locator("#task-runs a", has_text="flaky").click()
    expect(page.locator("#title")).to_contain_text("flaky")
    attempts = page.locator("#states tbody tr td:first-child")
    expect(attempts.last).to_have_text("2")
    expect(page.locator("#states")).to_contain_text("first attempt fails on purpose")
    expect(page.locator("#result")).to_contain_text("55")
    expect(page.locator("#upstream li a")).to_have_text([f"square-0[{i}]" for i in range(6)])
    expect(page.locator("#logs .logs")).to_contain_text("Attempt 1 failed")
    expect(page.locator("#summary")).to_contain_text(run["name"])
    screenshot(page, "task-run")


def test_flows_page_lists_flows_with_recent_runs(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.goto(f"{server.url}/flows")
    demo = page.locator("#flows tr[data-flow='ui-demo']")
    expect(demo.locator(".squares a")).to_have_count(2)
    demo.locator("td a").first.click()
    expect(page.locator("#runs tbody tr[data-id]")).to_have_count(2)
    assert "flow_name=ui-demo" in page.url


def test_user_content_renders_as_inert_text(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    page.add_init_script("window.__alerts = 0; window.alert = () => { window.__alerts++; };")
    run = run_of(server, XSS)
    page.goto(f"{server.url}/runs/{run['id']}")
    expect(page.locator("#title")).to_contain_text(XSS)
    expect(page.locator("#task-runs tbody")).to_contain_text(XSS)  # the task's name
    page.click("#tabs a[data-tab=logs]")
    expect(page.locator("#logs .logs")).to_contain_text(f"log line {XSS}")
    page.click("#tabs a[data-tab=details]")
    expect(page.locator("#parameters")).to_contain_text(XSS)
    page.click("#tabs a[data-tab=graph]")
    expect(page.locator("#graph svg")).to_contain_text("<script>")
    page.click("#tabs a[data-tab=tasks]")
    page.locator("#task-runs tbody a").first.click()  # the task run page
    expect(page.locator("#title")).to_contain_text(XSS)
    expect(page.locator("#result")).to_contain_text(XSS)  # its result, previewed
    expect(page.locator("#logs .logs")).to_contain_text(f"log line {XSS}")
    page.goto(f"{server.url}/runs")
    expect(page.locator("#runs tbody")).to_contain_text(XSS)
    page.goto(f"{server.url}/flows")
    expect(page.locator("#flows tbody")).to_contain_text(XSS)
    hostile_id = '"><img src=x onerror=alert(1)>'
    page.goto(f"{server.url}/runs/{quote(hostile_id)}")  # the URL's id reaches the HTML shell
    expect(page.locator("#summary .error")).to_contain_text(hostile_id)
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__alerts") == 0
    assert page.locator("script:not([src])").count() == 0  # no inline script was injected


def test_live_update_cancel_and_bulk_cancel(
    server: ServerProcess, watched: Watched, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    client = tmp_path / "client"
    release = tmp_path / "release"
    first = start_flow(server, client, "waiting", f"path={release}")
    try:
        run = wait_for_run(server, "ui-waiting", "RUNNING")
        page.goto(f"{server.url}/runs/{run['id']}")
        page.evaluate("window.__same_page = true")
        expect(page.locator("#title .badge")).to_have_text("Running")
        expect(page.locator("#cancel")).to_be_visible()
        release.touch()
        expect(page.locator("#title .badge")).to_have_text("Completed", timeout=20_000)
        expect(page.locator("#task-runs tbody tr[data-state=COMPLETED]")).to_have_count(2)
        assert page.evaluate("window.__same_page") is True  # updated without a reload
        expect(page.locator("#cancel")).to_be_hidden()
        first.wait(20)
    finally:
        stop(first)

    release.unlink()
    second = start_flow(server, client, "waiting", f"path={release}")
    third = start_flow(server, client, "waiting", f"path={release}")
    try:
        done = frozenset({run["id"]})
        one = wait_for_run(server, "ui-waiting", "RUNNING", done)
        two = wait_for_run(server, "ui-waiting", "RUNNING", done | {one["id"]})
        page.goto(f"{server.url}/runs/{one['id']}")
        expect(page.locator("#cancel")).to_be_visible()
        page.click("#cancel")
        expect(page.locator("#cancel")).to_have_text("Confirm cancel")
        page.click("#cancel")
        expect(page.locator("#title .badge")).to_have_text("Cancelling")
        expect(page.locator("#action-result")).to_contain_text("Cancellation requested")
        assert get_json(server, f"/api/flow_runs/{one['id']}")["state_type"] == "CANCELLING"

        page.goto(f"{server.url}/runs?flow_name=ui-waiting")
        row = page.locator(f"#runs tbody tr[data-id='{two['id']}']")
        expect(row).to_have_attribute("data-state", "RUNNING")
        row.locator("input.pick").check()
        page.click("#bulk-cancel")
        expect(page.locator("#bulk-result")).to_contain_text("Cancellation asked for 1 run")
        expect(row).to_have_attribute("data-state", "CANCELLING")
        assert get_json(server, f"/api/flow_runs/{two['id']}")["state_type"] == "CANCELLING"
    finally:
        stop(second)
        stop(third)


def test_a_large_map_stays_one_node_and_lists_its_members(
    server: ServerProcess, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    run = run_of(server, "ui-wide")
    page.goto(f"{server.url}/runs/{run['id']}#graph")
    group = page.locator("#graph svg g.node[data-kind=map]")
    expect(group).to_contain_text("\u00d7300")
    expect(page.locator("#graph-note")).to_contain_text("301 task runs as 2 nodes")
    group.click()  # too many to draw one by one: the task table lists them
    expect(page.locator("#task-group")).to_contain_text("one mapped call")
    expect(page.locator("#task-info")).to_contain_text("1\u201350 of 300")
    expect(page.locator("#task-runs tbody tr[data-id]")).to_have_count(50)
    page.click("#task-next")
    expect(page.locator("#task-info")).to_contain_text("51\u2013100 of 300")
    page.click("#tabs a[data-tab=timeline]")
    expect(page.locator("#timeline svg g.bar-row")).to_have_count(2)


def test_a_resumed_run_marks_replayed_task_runs(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    run = run_of(server, "ui-demo", "FAILED")
    page.goto(f"{server.url}/runs/{run['id']}")
    expect(page.locator("#summary")).to_contain_text("Attempts2")
    # Not a deployment's run: no Resume button, the command that resumes it instead.
    expect(page.locator("#resume-command")).to_contain_text(f"sluice flow-run resume {run['id']}")
    expect(page.locator("#resume")).to_have_count(0)
    # Resume from a task: the command with --from, to copy (no button that cannot work).
    broken = page.locator("#task-runs tbody tr", has_text="broken").first
    broken.locator("button.resume-from").click()
    command = f"sluice flow-run resume {run['id']} --from broken:0"
    expect(page.locator("#resume-from-command")).to_have_text(command)
    expect(page.locator("#resume-from")).to_contain_text("call 0 of task broken")
    expect(page.locator("#resume-from-confirm")).to_have_count(0)
    page.locator("#resume-from-copy").click()
    expect(page.locator("#resume-from-note")).not_to_be_empty()
    page.locator("#resume-from-close").click()
    expect(page.locator("#resume-from")).to_be_hidden()
    # Task names that are not plain words are quoted for the shell.
    quoted = page.evaluate(
        "async () => (await import('/ui-static/resume.js')).shellWord(\"it's <b>:0\")"
    )
    assert quoted == "'it'\\''s <b>:0'"
    page.select_option("#task-state", "FAILED")
    expect(page.locator("#task-runs tbody tr[data-state=FAILED]").first).to_be_visible()
    page.select_option("#task-state", "")
    # What the first attempt recorded comes back as Replayed (the squares, at least).
    for i in range(3):
        square = page.locator("#task-runs tbody tr", has_text=f"square-0[{i}]")
        expect(square.locator(".mark")).to_have_text("Replayed")
        expect(square.locator(".badge")).to_have_text("Replayed")
