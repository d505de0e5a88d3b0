"""Sequential workload (Sluice side): a flow calling a trivial task N times.

Tasks are called directly (no submit).  The per-task overhead is
``(T(N) - T(0)) / N`` where T(N) and T(0) are each the best of three
runs of the same flow.  A first, untimed N=0 run absorbs one-off start-up work.

It also reports the CPU time per task of the flow's own thread (the engine)
and of the process's other threads (mostly the store writer), from the same
runs: with one interpreter lock, the wall time is about their sum.

Usage: python sluice_sequential.py N
"""

import time

from _harness import arg_int, emit, timed

from sluice import flow, task


@task
def noop(x):
    return x


@flow
def sequential(n):
    for i in range(n):
        noop(i)
    return n


def main() -> None:
    """Run warm-up, baseline and measured flows, then print the result."""
    n = arg_int(1000)
    warmup_s, _ = timed(sequential, 0)
    baseline = min((timed_cpu(0) for _ in range(3)), key=lambda run: run[0])
    baseline_s = baseline[0]
    # Best of three, like the baseline: one run is at the mercy of the VM's
    # neighbours and of first-call costs.
    runs = [timed_cpu(n) for _ in range(3)]
    total_s, flow_cpu_s, process_cpu_s, result = min(runs, key=lambda run: run[0])
    per_task_us = (total_s - baseline_s) / n * 1e6 if n else None
    flow_thread_us = (flow_cpu_s - baseline[1]) / n * 1e6 if n else None
    other_threads_us = (
        ((process_cpu_s - flow_cpu_s) - (baseline[2] - baseline[1])) / n * 1e6 if n else None
    )
    emit(
        "sequential",
        n=n,
        ok=result == n,
        warmup_s=warmup_s,
        baseline_s=baseline_s,
        total_s=total_s,
        per_task_us=per_task_us,
        flow_thread_cpu_us=flow_thread_us,
        other_threads_cpu_us=other_threads_us,
    )


def timed_cpu(n):
    """One flow of N calls: wall seconds, this thread's and the process's CPU seconds, result."""
    wall, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
    result = sequential(n)
    return (
        time.perf_counter() - wall,
        time.thread_time() - thread,
        time.process_time() - process,
        result,
    )


if __name__ == "__main__":
    main()
