"""The web UI under load: server time of its pages and data requests, and the browser.

A store with ``--runs`` flow runs (states mixed, spread over the last 25 days)
and one flow run of ``--tasks`` task runs (a source task, a ``.map`` over it,
a sink; ``--logs`` log lines) is written straight through the store's batch
writer, then a real ``python -m sluice server start`` serves it. Figures:

- server time (median of ``--requests`` after a warm-up, body read) of every
  request a page makes on load: the runs list (HTML shell + its data page),
  the flow-run page (shell + detail + graph + task table + logs), and the
  dashboard; also a poll of the flow-run graph that the browser already
  holds (answered 304 from the version query); goal <= 300 ms per page;
- in headless Chromium (Debian's, through Playwright): time from navigation
  to the rendered runs table / graph / timeline, and the longest JavaScript
  long task plus total blocking time (sum of long tasks' time past 50 ms) on
  each page, so "the page stays responsive" is a number.

Run: ``.venv/bin/python bench/bench_ui.py [--runs 100000] [--tasks 10000]
[--logs 10000] [--requests 15]``. Prefect's UI is not measured side by side:
it needs its Node-built front end and a browser session of its own.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_client import clean_env, server

PAGE_GOAL_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STATES = ("COMPLETED",) * 16 + ("FAILED", "CRASHED", "CANCELLED", "RUNNING")


def populate(home: Path, runs: int, tasks: int, logs: int) -> tuple[str, float]:
    """Fill ``home``'s store; (id of the big flow run, seconds it took)."""
    from sluice.backend.local import LocalBackend
    from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, new_id
    from sluice.settings import load_settings
    from sluice.states import State, StateType

    home.mkdir(parents=True)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean_env(home))
    try:
        started = time.perf_counter()
        backend = LocalBackend(load_settings())
        now = _dt.datetime.now(_dt.timezone.utc)
        step = _dt.timedelta(seconds=25 * 86400 / max(runs, 1))
        flows = ("etl", "report", "sync", "train")
        for name in flows:
            backend.write_flow(FlowRecord(name))
        for i in range(runs):
            at = now - step * (runs - i)
            run = FlowRunRecord(
                new_id(), flows[i % 4], f"run-{i}", parameters={"i": i},
                tags=["nightly"] if i % 2 else [], created=at, updated=at,
            )  # fmt: skip
            run.apply(State(StateType.RUNNING, timestamp=at))
            ended = at + _dt.timedelta(seconds=3)
            final = State(StateType(STATES[i % len(STATES)]), timestamp=ended)
            run.apply(final)
            backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", final))
        big = FlowRunRecord(new_id(), "etl", "ten-thousand", created=now, updated=now)
        big.apply(State(StateType.RUNNING, timestamp=now))
        running = State(StateType.RUNNING, timestamp=now)
        backend.write_flow_run(big, StateRecord.from_state(big.id, "flow", running))
        source = _task(backend, big.id, "extract", -1, [], now)
        mapped = [_task(backend, big.id, "transform", i, [source], now) for i in range(tasks - 2)]
        _task(backend, big.id, "load", -1, mapped, now)
        backend.write_logs(
            [
                LogRecord(big.id, None, 20, "sluice.flow_runs", f"line {i} of the big run", now)
                for i in range(logs)
            ]
        )
        backend.flush()
        backend.close()
        return big.id, time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _task(backend: Any, run_id: str, name: str, index: int, upstream: list[str], at: Any) -> str:
    from sluice.schemas import TaskRunRecord, new_id
    from sluice.states import State, StateType

    task = TaskRunRecord(
        new_id(), name, f"{name}-0" + (f"[{index}]" if index >= 0 else ""), run_id,
        map_index=index, upstream_ids=upstream, created=at,
    )  # fmt: skip
    task.apply(State(StateType.RUNNING, timestamp=at))
    state = StateType.FAILED if index % 97 == 1 else StateType.COMPLETED
    task.apply(State(state, timestamp=at + _dt.timedelta(milliseconds=5 + index % 50)))
    backend.write_task_run(task)
    return task.id


def get_ms(url: str, headers: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(milliseconds, status, ETag) for one GET, body read."""
    request = urllib.request.Request(url, headers=headers or {})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status, etag = response.status, response.headers.get("ETag", "")
    except urllib.error.HTTPError as error:  # 304 arrives as an "error"
        error.read()
        status, etag = error.code, error.headers.get("ETag", "")
    return (time.perf_counter() - started) * 1000, status, etag


class ServerCpu:
    """CPU seconds the server process has used (Linux /proc): a figure that, unlike
    wall time, does not grow when other programs compete for the cores."""

    def __init__(self, port: str) -> None:
        self.pid = 0
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"server" in argv and port.encode() in argv:
                self.pid = int(entry.name)
        self._tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        if not self.pid:
            return float("nan")
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick


CPU: ServerCpu | None = None


def median_ms(url: str, requests: int, headers: dict[str, str] | None = None) -> float:
    """The median wall time of ``requests`` GETs (after a warm-up); records server CPU."""
    get_ms(url, headers)
    before = CPU.seconds() if CPU else float("nan")
    wall = statistics.median(get_ms(url, headers)[0] for _ in range(requests))
    LAST_CPU_MS[0] = ((CPU.seconds() if CPU else float("nan")) - before) * 1000 / requests
    return wall


#: server CPU milliseconds per request of the last :func:`median_ms`
LAST_CPU_MS = [float("nan")]


def graph_without_cache_ms(home: Path, big: str, repeat: int = 5) -> tuple[float, float]:
    """Median in-process (wall, CPU) ms of the graph query, its edges computed every time."""
    from sluice.backend.local import LocalBackend
    from sluice.settings import Settings
    from sluice.store import ui_graph

    backend = LocalBackend(Settings(home=home))
    try:
        times, cpu = [], []
        for _ in range(repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            backend.read(lambda conn: ui_graph.task_graph(conn, big))
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        return statistics.median(times), statistics.median(cpu)
    finally:
        backend.close()


def server_rows(base: str, big: str, requests: int) -> list[tuple[str, float, float, str]]:
    """(label, wall ms, server CPU ms, kind) rows: kind "request" or "page" (a page's load)."""
    run = f"/api/ui/flow_runs/{big}"
    rows: list[tuple[str, float, float, str]] = []
    # The graph's first view computes its edges; later ones (polls while the
    # run moves, other viewers) reuse them until a task run is added. Other
    # reads go first so that this one does not also pay the server's first
    # database connection.
    get_ms(f"{base}/api/ui/flow_runs?limit=1")
    get_ms(f"{base}{run}/task_runs?limit=1")
    before = CPU.seconds() if CPU else float("nan")
    first_graph = get_ms(f"{base}{run}/graph")[0]
    first_cpu = ((CPU.seconds() if CPU else float("nan")) - before) * 1000
    pages = {
        "runs list": ["/runs", "/api/ui/flow_runs?limit=50"],
        "runs list, filtered (flow+state+tag)": [
            "/runs",
            "/api/ui/flow_runs?flow_name=etl&state=FAILED&tag=nightly&limit=50",
        ],
        "runs list, page 1000": ["/runs", "/api/ui/flow_runs?limit=50&offset=49950"],
        "flow-run page, 10k task runs (Task runs tab)": [
            f"/runs/{big}",
            run,
            f"{run}/task_runs?limit=50",
        ],
        "  + Graph or Timeline tab": [f"{run}/graph"],
        "  + Logs tab": [f"{run}/logs?limit=200"],
        "dashboard, 30 days": ["/", "/api/ui/dashboard?range=30d"],
    }
    for page, paths in pages.items():
        total = total_cpu = 0.0
        for path in paths:
            ms = median_ms(base + path, requests)
            total += ms
            total_cpu += LAST_CPU_MS[0]
            rows.append((f"  GET {path.replace(big, '{id}')[:56]}", ms, LAST_CPU_MS[0], "request"))
        rows.append((f"{page}: total", total, total_cpu, "page"))
    label = "graph of 10k task runs, first view (edges computed)"
    rows.append((label, first_graph, first_cpu, "request"))
    etag = get_ms(f"{base}{run}/graph")[2]
    unchanged = median_ms(f"{base}{run}/graph", requests, {"If-None-Match": etag})
    rows.append(("poll of the 10k graph, unchanged (304)", unchanged, LAST_CPU_MS[0], "request"))
    return rows


LONG_TASKS = """
window.__long = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__long.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""


def browser_rows(base: str, big: str) -> list[tuple[str, float, float, float]]:
    """(label, ms to rendered, longest long task ms, total blocking ms) per page view."""
    from playwright.sync_api import sync_playwright

    views = [
        ("runs list", "/runs", "#runs tbody tr[data-id]"),
        ("dashboard (30 days)", "/?range=30d", "#chart svg rect"),
        ("flow run: task table", f"/runs/{big}#tasks", "#task-runs tbody tr[data-id]"),
        ("flow run: graph", f"/runs/{big}#graph", "#graph svg g.node"),
        ("flow run: timeline", f"/runs/{big}#timeline", "#timeline svg g.bar-row"),
        ("flow run: logs", f"/runs/{big}#logs", "#logs .line"),
    ]
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for label, path, selector in views:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.add_init_script(LONG_TASKS)
            started = time.perf_counter()
            page.goto(base + path)
            page.wait_for_selector(selector, timeout=60_000)
            rendered = (time.perf_counter() - started) * 1000
            page.wait_for_timeout(2500)  # one more poll cycle while the page is open
            long = page.evaluate("window.__long")
            rows.append((label, rendered, max(long, default=0.0),
                         sum(max(0.0, d - 50) for d in long)))  # fmt: skip
            context.close()
        browser.close()
    return rows


def main() -> None:
    """Fill the store, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="flow runs in the store")
    parser.add_argument("--tasks", type=int, default=10_000, help="task runs of the big run")
    parser.add_argument("--logs", type=int, default=10_000, help="log lines of the big run")
    parser.add_argument("--requests", type=int, default=15, help="requests per figure (median)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium figures")
    args = parser.parse_args()
    global CPU

    with tempfile.TemporaryDirectory(prefix="sluice-bench-ui-") as tmp:
        home = Path(tmp) / "server"
        big, fill_s = populate(home, args.runs, args.tasks, args.logs)
        print(f"wrote {args.runs:,} flow runs and a run of {args.tasks:,} task runs "
              f"in {fill_s:.1f} s", file=sys.stderr)  # fmt: skip
        with server(home, fresh=False) as (url, _):
            CPU = ServerCpu(url.rsplit(":", 1)[1])
            rows = server_rows(url, big, args.requests)
            uncached, uncached_cpu = graph_without_cache_ms(home, big)
            label = "graph query, edges not cached (in-process, median of 5)"
            rows.append((label, uncached, uncached_cpu, "request"))
            views = [] if args.no_browser else browser_rows(url, big)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nserver time: wall ms (median of {args.requests}) and server CPU ms per request "
          f"(goal: each request and page <= {PAGE_GOAL_MS:g} ms); load average {load}")  # fmt: skip
    print(f"{'request or page':<62}{'wall ms':>9}{'CPU ms':>9}  verdict")
    for label, ms, cpu_ms, kind in rows:
        verdict = ("ok" if ms <= PAGE_GOAL_MS else "OVER") if kind else ""
        print(f"{label:<62}{ms:>9.1f}{cpu_ms:>9.1f}  {verdict}")
    if views:
        print("\nheadless Chromium: navigation to rendered, JS long tasks over the next 2.5 s")
        print(f"{'page':<28}{'rendered ms':>12}{'longest task ms':>17}{'blocking ms':>13}")
        for label, rendered, longest, blocking in views:
            print(f"{label:<28}{rendered:>12.0f}{longest:>17.0f}{blocking:>13.0f}")


if __name__ == "__main__":
    main()
