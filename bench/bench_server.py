"""The API server on its own: start to healthy, ingest rate, runs-list reads.

Three figures, each against a real ``python -m sluice server start`` on a free
127.0.0.1 port with its own empty ``SLUICE_HOME``:

- start to healthy: spawn until the first 200 from ``/api/health`` (best of
  ``--repeat``; goal <= 1 s);
- ingest: ready-made ``/api/ingest`` batches of task run + state entries,
  records per second as the server acknowledges them (durable on 202; best
  of ``--repeat``; goal >= 10,000/s);
- runs list: ``GET /api/flow_runs?limit=50`` on the first page and on a deep
  page (``offset``) with ``--runs`` flow runs in the store, written
  beforehand through ``LocalBackend`` (median of ``--requests``; goal <= 100 ms).

Run: ``.venv/bin/python bench/bench_server.py [--runs 100000] [--ingest 100000]
[--repeat 3] [--requests 20]``. Standard library and the sluice package only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_client import clean_env, ingest_rate, server

STARTUP_GOAL_S = 1.0
INGEST_GOAL = 10_000
PAGE_GOAL_MS = 100.0


def populate(home: Path, runs: int) -> float:
    """Write ``runs`` finished flow runs into ``home``'s store; seconds it took."""
    import datetime as _dt
    import os

    from sluice.backend.local import LocalBackend
    from sluice.schemas import FlowRecord, FlowRunRecord, StateRecord, new_id
    from sluice.settings import load_settings
    from sluice.states import State, StateType

    home.mkdir(parents=True)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean_env(home))
    try:
        started = time.perf_counter()
        backend = LocalBackend(load_settings())
        t0 = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
        for name in ("etl", "report", "sync"):
            backend.write_flow(FlowRecord(name))
        for i in range(runs):
            at = t0 + _dt.timedelta(seconds=i)
            run = FlowRunRecord(
                new_id(), ("etl", "report", "sync")[i % 3], f"run-{i}",
                parameters={"i": i}, tags=["nightly"] if i % 2 else [], created=at, updated=at,
            )  # fmt: skip
            state = State(StateType.COMPLETED, timestamp=at + _dt.timedelta(seconds=1))
            run.apply(state)
            backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", state))
        backend.flush()
        backend.close()
        return time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)


def get_ms(url: str) -> float:
    """Milliseconds for one GET, body read."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status}")
    return (time.perf_counter() - started) * 1000


def page_ms(base: str, offset: int, requests: int) -> float:
    """The median time of ``requests`` reads of one runs-list page (after one warm-up)."""
    url = f"{base}/api/flow_runs?limit=50&offset={offset}"
    get_ms(url)
    return statistics.median(get_ms(url) for _ in range(requests))


def main() -> None:
    """Measure, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="flow runs in the store")
    parser.add_argument("--ingest", type=int, default=100_000, help="records to ingest")
    parser.add_argument("--ingest-batch", type=int, default=5000, help="records per request")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--requests", type=int, default=20, help="reads per page (median)")
    args = parser.parse_args()

    rows: list[tuple[str, str, str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="sluice-bench-server-") as tmp:
        work = Path(tmp)
        startups, rates = [], []
        for i in range(args.repeat):
            with server(work / f"start-{i}") as (_, startup_s):
                startups.append(startup_s)
            rate, _ = ingest_rate(args.ingest, args.ingest_batch, work / f"ingest-{i}")
            rates.append(rate)
        startup, rate = min(startups), max(rates)
        rows.append(("start to healthy (best)", f"{startup:.2f} s", "<= 1 s",
                     startup <= STARTUP_GOAL_S))  # fmt: skip
        rows.append((f"ingest, {args.ingest:,} records (best)", f"{rate:,.0f} rec/s",
                     f">= {INGEST_GOAL:,}/s", rate >= INGEST_GOAL))  # fmt: skip

        home = work / "runs"
        fill_s = populate(home / "server", args.runs)
        print(f"wrote {args.runs:,} flow runs in {fill_s:.1f} s", file=sys.stderr)
        deep = max(0, args.runs - 1000)
        with server(home / "server", fresh=False) as (url, _):
            for label, offset in (("first page", 0), (f"deep page (offset {deep:,})", deep)):
                ms = page_ms(url, offset, args.requests)
                rows.append((f"runs list {label}, {args.runs:,} runs", f"{ms:.1f} ms",
                             f"<= {PAGE_GOAL_MS:g} ms", ms <= PAGE_GOAL_MS))  # fmt: skip

    print(f"\n{'measure':<52}{'value':>14}  {'goal':<12}verdict")
    for label, value, goal, ok in rows:
        print(f"{label:<52}{value:>14}  {goal:<12}{'ok' if ok else 'OVER'}")


if __name__ == "__main__":
    main()
