"""Durability window (Sluice side): from a task's return to the commit of its completion.

A flow calls a task N times, like the sequential workload; the task returns
at once, or after sleeping SLEEP_MS milliseconds (a task waiting on I/O, which
leaves the interpreter to the writer thread meanwhile). Each task
notes the moment it returns; the store writer's sink is wrapped so that, once
a transaction has committed, the moment is noted for every task run it stored
as Completed. The window of a task is the difference: how long a finished
task could still be lost to a SIGKILL (and run again on resume). The figures
are the median and the 99th percentile over the N tasks, and the largest.

This reads the embedded backend's internals (its batcher and sink), as a
measuring probe only; the bench has no Prefect counterpart for it.

Usage: python sluice_durability.py N [SLEEP_MS]
"""

import statistics
import sys
import time

from _harness import arg_int, emit

from sluice import flow, task
from sluice.backend.factory import get_backend
from sluice.context import task_run_var
from sluice.states import StateType
from sluice.store.rows import TASK_RUN
from sluice.store.write_groups import RecordKind

returned: dict[str, float] = {}
committed: dict[str, float] = {}


pause = 0.0


@task
def step(x):
    if pause:
        time.sleep(pause)
    returned[task_run_var.get().task_run.id] = time.perf_counter()
    return x


@flow
def sequential(n):
    for i in range(n):
        step(i)
    return n


def instrument() -> None:
    """Wrap the store writer's sink: note when each Completed task run was committed."""
    batcher = get_backend()._batcher
    sink = batcher._sink
    state_type = TASK_RUN.batched_names.index("state_type")

    def timed_sink(batch):
        sink(batch)
        now = time.perf_counter()
        for run_id, snapshot in batch.latest.get(RecordKind.TASK_RUN, {}).items():
            if snapshot[state_type] is StateType.COMPLETED:
                committed.setdefault(run_id, now)

    batcher._sink = timed_sink


def percentile(values, q):
    """The q-th percentile (0-100) of ``values``, nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def main() -> None:
    """Run a warm-up flow, then the measured one, and report the window in microseconds."""
    global pause
    n = arg_int(1000)
    pause = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    sequential(0)
    instrument()
    result = sequential(n)
    windows = [(committed[k] - t) * 1e6 for k, t in returned.items() if k in committed]
    emit(
        "durability",
        n=n,
        sleep_ms=pause * 1000,
        ok=result == n and len(windows) == n,
        error=None if len(windows) == n else f"{len(windows)} of {n} completions committed",
        p50_us=statistics.median(windows) if windows else None,
        p99_us=percentile(windows, 99) if windows else None,
        max_us=max(windows) if windows else None,
    )


if __name__ == "__main__":
    main()
