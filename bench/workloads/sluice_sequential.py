"""Sequential workload (Sluice side): a flow calling a trivial task N times.

Tasks are called directly (no submit).  The per-task overhead is
``(T(N) - T(0)) / N`` where T(N) and T(0) are each the best of three
runs of the same flow.  A first, untimed N=0 run absorbs one-off start-up work.

Usage: python sluice_sequential.py N
"""

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
    baseline_s = min(timed(sequential, 0)[0] for _ in range(3))
    # Best of three, like the baseline: one run is at the mercy of the VM's
    # neighbours and of first-call costs.
    runs = [timed(sequential, n) for _ in range(3)]
    total_s, result = min(runs, key=lambda run: run[0])
    per_task_us = (total_s - baseline_s) / n * 1e6 if n else None
    emit(
        "sequential",
        n=n,
        ok=result == n,
        warmup_s=warmup_s,
        baseline_s=baseline_s,
        total_s=total_s,
        per_task_us=per_task_us,
    )


if __name__ == "__main__":
    main()
