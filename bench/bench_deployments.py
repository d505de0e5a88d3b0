"""Deployment data layer: run creation, claims and a scheduler pass, on SQLite and PostgreSQL.

Sluice only (the worker pickup bench compares with Prefect end to end). Each
row is one operation timed on a fresh store:

    python bench/bench_deployments.py                 # SQLite
    python bench/bench_deployments.py --pg URL        # and PostgreSQL (a scratch database
                                                      # is created and dropped)

Prints: operation | store | count | seconds | per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

N_RUNS = 1000
CLAIMERS = 3


def _backend(home: Path, url: str) -> Any:
    from sluice.backend.local import LocalBackend
    from sluice.settings import Settings, StoreSettings

    return LocalBackend(Settings(home=home, database_url=url, store=StoreSettings()))


def _claimer(home: str, url: str, name: str, out: Any, ready: Any, go: Any) -> None:
    backend = _backend(Path(home), url)
    backend.list_work_pools()  # connected before the start
    ready.release()
    go.wait()
    started = time.perf_counter()
    claimed = 0
    while True:
        got = backend.claim_flow_runs("bench", worker_name=name, limit=4)
        if not got:
            break
        claimed += len(got)
    out.put((claimed, time.perf_counter() - started))
    backend.close()


def bench(home: Path, url: str, label: str) -> list[tuple[str, str, int, float]]:
    from sluice.deployments.scheduler import schedule_due_runs
    from sluice.scheduling.schedules import IntervalSchedule, schedule_to_dict
    from sluice.schemas import DeploymentRecord, WorkPoolRecord

    rows: list[tuple[str, str, int, float]] = []
    backend = _backend(home, url)
    backend.create_work_pool(WorkPoolRecord("bench"))
    schema = {"properties": {"n": {"type": "integer"}}, "required": ["n"]}
    dep = backend.upsert_deployment(
        DeploymentRecord(
            "d", "flow", "flows/f.py:flow", parameters={"n": 1},
            parameter_schema=schema, work_pool_name="bench",
        )
    )  # fmt: skip

    started = time.perf_counter()
    for i in range(N_RUNS):
        backend.create_flow_run_from_deployment(dep.id, {"n": i})
    took = time.perf_counter() - started
    rows.append(("create_flow_run_from_deployment", label, N_RUNS, took))

    started = time.perf_counter()
    claimed = 0
    while got := backend.claim_flow_runs("bench", worker_name="w", limit=1):
        claimed += len(got)
    rows.append(("claim, 1 claimer, limit 1", label, claimed, time.perf_counter() - started))

    now = dt.datetime.now(dt.timezone.utc)
    ticks = [now - dt.timedelta(seconds=i) for i in range(N_RUNS)]
    backend.create_scheduled_runs(dep.id, times=ticks)
    ctx = multiprocessing.get_context("spawn")
    queue, ready, go = ctx.Queue(), ctx.Semaphore(0), ctx.Event()
    procs = [
        ctx.Process(target=_claimer, args=(str(home), url, f"w{i}", queue, ready, go))
        for i in range(CLAIMERS)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    go.set()
    results = [queue.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    total, slowest = sum(c for c, _ in results), max(t for _, t in results)
    rows.append((f"claim, {CLAIMERS} processes racing, limit 4", label, total, slowest))

    schedules = [dict(schedule_to_dict(IntervalSchedule(dt.timedelta(minutes=1))))]
    for i in range(50):
        backend.upsert_deployment(
            DeploymentRecord(f"s{i}", "flow", "f.py:flow", parameters={"n": 1},
                             parameter_schema=schema, schedules=schedules)
        )  # fmt: skip
    started = time.perf_counter()
    report = schedule_due_runs(backend, horizon=dt.timedelta(minutes=20), max_runs=20)
    took = time.perf_counter() - started
    rows.append(("scheduler pass, 50 deployments", label, report.created, took))
    started = time.perf_counter()
    again = schedule_due_runs(backend, horizon=dt.timedelta(minutes=20), max_runs=20)
    took = time.perf_counter() - started
    rows.append(("scheduler pass again (nothing new)", label, again.created, took))
    backend.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="", help="a PostgreSQL URL to create a scratch database on")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench(Path(tmp) / "sqlite", "", "sqlite")
        if args.pg:
            from sqlalchemy import create_engine
            from sqlalchemy.engine import make_url

            name = f"sluice_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
                rows += bench(Path(tmp) / "pg", url, "postgresql")
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    print(f"{'operation':<44} {'store':<11} {'count':>6} {'seconds':>8} {'per s':>8}")
    for op, store, count, secs in rows:
        rate = f"{count / secs:8.0f}" if secs else "       -"
        shown = f"{secs:8.3f}" if secs else "       -"
        print(f"{op:<44} {store:<11} {count:>6} {shown} {rate}")


if __name__ == "__main__":
    sys.exit(main())
