"""Map workload (Prefect side): ``add_one.map(range(N))`` with the default runner.

An empty warm-up flow runs first so one-off start-up cost (reported as
``warmup_s``; the hello-world workload covers it) is kept apart from the
map itself (``wall_s``).  Peak RSS is measured by the runner.

Usage: python prefect_map.py N
"""

from _harness import arg_int, emit, timed
from prefect import flow, task


@task
def add_one(x):
    return x + 1


@flow
def warm_up():
    return None


@flow
def map_flow(n):
    futures = add_one.map(range(n))
    return [f.result() for f in futures]


def main() -> None:
    """Run the warm-up flow, then the measured map flow, and report."""
    n = arg_int(1000)
    warmup_s, _ = timed(warm_up)
    wall_s, result = timed(map_flow, n)
    emit(
        "map",
        n=n,
        ok=result == list(range(1, n + 1)),
        warmup_s=warmup_s,
        wall_s=wall_s,
        per_task_us=wall_s / n * 1e6 if n else None,
    )


if __name__ == "__main__":
    main()
