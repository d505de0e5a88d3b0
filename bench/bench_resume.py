"""Resume and persistence benchmarks (Sluice only; Prefect has no journal replay).

Prints a table:
- replay of N journaled task runs: a flow of N sequential tasks fails at its
  end; ``resume_flow_run`` then replays all N from the journal. Reported: the
  whole resume call, and the time spent per replayed task (goal: N=10,000 in
  <= 1 s).
- result persistence overhead: per-task overhead of sequential tasks with
  results persisted (the default) minus the same with ``persist_result=False``.

Each measurement runs in a fresh process with a fresh SLUICE_HOME.

    .venv/bin/python bench/bench_resume.py [--n 10000] [--seq-n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

REPLAY = textwrap.dedent(
    """
    import json, os, sys, time
    from sluice import flow, task, resume_flow_run

    FAIL = {"on": True}

    @task
    def step(i: int) -> int:
        return i

    @task
    def last() -> None:
        if FAIL["on"]:
            raise RuntimeError("fail once")

    @flow
    def long_flow(n: int) -> int:
        total = sum(step(i) for i in range(n))
        last()
        return total

    n = int(sys.argv[1])
    state = long_flow(n, return_state=True)
    FAIL["on"] = False
    started = time.perf_counter()
    resumed = resume_flow_run(state.run_id, flow=long_flow)
    elapsed = time.perf_counter() - started
    assert resumed.is_completed(), resumed
    print(json.dumps({"resume_s": elapsed}))
    """
)

PERSIST = textwrap.dedent(
    """
    import json, sys, time
    from sluice import flow, task

    persist = sys.argv[2] == "on"

    @task(persist_result=persist)
    def add_one(x: int) -> int:
        return x + 1

    @flow
    def seq(n: int) -> None:
        for i in range(n):
            add_one(i)

    n = int(sys.argv[1])
    seq(0)
    best = None
    for _ in range(3):
        t = time.process_time()
        seq(n)
        spent = (time.process_time() - t) / n
        best = spent if best is None else min(best, spent)
    print(json.dumps({"per_task_s": best}))
    """
)


def run_script(source: str, *args: str) -> dict[str, float]:
    """Run ``source`` in a fresh interpreter and home; its JSON line."""
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        script = Path(tmp) / "bench_script.py"
        script.write_text(source)
        env = {
            **os.environ,
            "SLUICE_HOME": str(Path(tmp) / "home"),
            "SLUICE_LOGGING_TASK_STATE_LINES": "false",
            "PYTHONPATH": str(REPO / "src"),
        }
        proc = subprocess.run(
            [sys.executable, str(script), *args], env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"benchmark script failed:\n{proc.stderr[-2000:]}")
        figures: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="journaled tasks to replay")
    parser.add_argument("--seq-n", type=int, default=2_000, help="tasks per persistence run")
    opts = parser.parse_args()
    replay = run_script(REPLAY, str(opts.n))
    on = run_script(PERSIST, str(opts.seq_n), "on")
    off = run_script(PERSIST, str(opts.seq_n), "off")
    rows = [
        (f"resume replaying {opts.n:,} journaled tasks", f"{replay['resume_s']:.2f} s", "<= 1 s"),
        ("  per replayed task", f"{replay['resume_s'] / opts.n * 1e6:.0f} µs", ""),
        (
            "sequential task, results persisted (CPU)",
            f"{on['per_task_s'] * 1e6:.1f} µs",
            "<= 50 µs",
        ),
        ("sequential task, persist_result=False (CPU)", f"{off['per_task_s'] * 1e6:.1f} µs", ""),
        (
            "  cost of persistence per task",
            f"{(on['per_task_s'] - off['per_task_s']) * 1e6:.1f} µs",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}} | {'sluice':>10} | budget")
    print("-" * (width + 24))
    for label, value, budget in rows:
        print(f"{label:<{width}} | {value:>10} | {budget}")


if __name__ == "__main__":
    main()
