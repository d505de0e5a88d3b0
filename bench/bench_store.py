"""Store figures: enqueue cost, writer throughput, end to end, on SQLite.

Run: ``.venv/bin/python bench/bench_store.py [N]`` (default N = 10,000 task
runs, each recorded as the engine does: 3 state changes and 1 log line).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from sluice.backend.local import LocalBackend
from sluice.schemas import LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings, StoreSettings
from sluice.states import Completed, Pending, Running

Work = list[tuple[TaskRunRecord, list[StateRecord], LogRecord]]


def make_work(n: int) -> Work:
    flow_run_id = new_id()
    out = []
    for i in range(n):
        run = TaskRunRecord(id=new_id(), task_name="t", name=f"t-{i}", flow_run_id=flow_run_id)
        states = [
            StateRecord.from_state(run.id, "task", s) for s in (Pending(), Running(), Completed())
        ]
        log = LogRecord(flow_run_id, run.id, 20, "sluice.task", f"hello {i}", run.created)
        out.append((run, states, log))
    return out


def record(backend: LocalBackend, work: Work) -> None:
    for run, states, log in work:
        for state in states:
            backend.write_task_run(run, state)
        backend.write_logs([log])


def backend_in(home: str, **store: float) -> LocalBackend:
    return LocalBackend(Settings(home=Path(home), store=StoreSettings(**store)))  # type: ignore[arg-type]


def enqueue_cost(work: Work) -> tuple[float, float]:
    """Microseconds per write_task_run(run, state) and per write_logs([one]) call."""
    with tempfile.TemporaryDirectory() as home:
        backend = backend_in(home, batch_size=10**9, flush_interval=3600)
        run, states, log = work[0]
        calls = 2000
        best_run = best_log = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                backend.write_task_run(run, states[1])
            best_run = min(best_run, time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(calls):
                backend.write_logs([log])
            best_log = min(best_log, time.perf_counter() - started)
            backend.flush()
        backend.close()
    return best_run / calls * 1e6, best_log / calls * 1e6


def writer_throughput(work: Work) -> tuple[int, int, float, float]:
    """Records enqueued, rows stored, and wall and CPU seconds the writer took."""
    with tempfile.TemporaryDirectory() as home:
        backend = backend_in(home, batch_size=10**9, flush_interval=3600)
        record(backend, work)
        items = len(backend._batcher._queue)
        started, cpu_started = time.perf_counter(), time.process_time()
        backend.flush()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started  # the writer thread's, the caller waits
        with backend.engine.connect() as conn:
            rows = sum(
                conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                for t in ("task_run", "run_state", "log")
            )
        backend.close()
    return items, rows, seconds, cpu


def end_to_end(work: Work) -> float:
    """Seconds to record everything with default settings, flush included."""
    with tempfile.TemporaryDirectory() as home:
        backend = backend_in(home)
        started = time.perf_counter()
        record(backend, work)
        backend.flush()
        seconds = time.perf_counter() - started
        backend.close()
    return seconds


def main(n: int) -> None:
    work = make_work(n)
    per_run, per_log = enqueue_cost(work)
    print(
        f"enqueue: write_task_run(run, state) {per_run:.2f} us, write_logs([log]) {per_log:.2f} us"
    )
    items, rows, seconds, cpu = writer_throughput(work)
    print(
        f"writer: {items:,} records ({rows:,} rows after coalescing) in {seconds:.3f} s"
        f" = {items / seconds:,.0f} records/s, {rows / seconds:,.0f} rows/s"
        f" ({items / cpu:,.0f} records per CPU second)"
    )
    seconds = end_to_end(work)
    print(f"end to end ({n:,} task runs, default settings): {seconds:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
