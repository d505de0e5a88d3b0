#!/usr/bin/env python3
"""Dask runner benchmark: ``.map`` of N trivial tasks on a two-worker LocalCluster.

Three sides, each in fresh child processes with an empty home folder:

- ``raw``: plain ``client.gather(client.map(add_one, range(N)))``;
- ``sluice``: ``[f.result() for f in add_one.map(range(N))]`` in a flow with
  ``DaskTaskRunner(address=...)``, every task run recorded in the embedded store;
- ``prefect``: the same flow on Prefect 3.9.1 with prefect-dask (from
  ``bench/.prefect-venv``; ``--setup-prefect-dask`` installs prefect-dask there).

Every child starts ``LocalCluster(n_workers=2, threads_per_worker=1)``, runs a
warm-up map of 2 tasks (which starts Prefect's server, and Sluice's store),
then the timed map. It reports the map's wall time inside the flow, the whole
flow call (client connect and close included) and the child's process wall
time (imports and cluster start included). Ratios are against raw Dask.

    python bench/bench_dask.py                     # N = 1000, 10000; all sides
    python bench/bench_dask.py --sizes 1000 --skip-prefect
    python bench/bench_dask.py --setup-prefect-dask  # install prefect-dask, then exit

Stdlib only at the top: the same file is the child program on every side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PREFECT_VENV = BENCH_DIR / ".prefect-venv"
PREFECT_CONSTRAINTS = BENCH_DIR / "prefect-constraints.txt"
RESULT_MARKER = "BENCH-RESULT "
SIDES = ("raw", "sluice", "prefect")
GOAL_RATIO = 3.0


def add_one(x: int) -> int:
    return x + 1


# --------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------


def child(side: str, n: int) -> dict[str, Any]:
    """Run one side's workload in this process; its timings."""
    from distributed import LocalCluster

    started = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        cluster_s = time.perf_counter() - started
        runner = {"raw": _raw, "sluice": _sluice, "prefect": _prefect}[side]
        warm = runner(cluster.scheduler_address, 2)
        timed = runner(cluster.scheduler_address, n)
    if timed["values"] != n * (n + 1) // 2:
        raise SystemExit(f"{side}: wrong checksum {timed['values']}")
    return {
        "side": side,
        "n": n,
        "cluster_start_s": cluster_s,
        "warmup_s": warm["call_s"],
        "map_s": timed["map_s"],
        "call_s": timed["call_s"],
        "checksum": timed["values"],
    }


def _raw(address: str, n: int) -> dict[str, Any]:
    from distributed import Client

    started = time.perf_counter()
    with Client(address) as client:
        t0 = time.perf_counter()
        values = client.gather(client.map(add_one, range(n)))
        map_s = time.perf_counter() - t0
    return {"map_s": map_s, "call_s": time.perf_counter() - started, "values": sum(values)}


def _sluice(address: str, n: int) -> dict[str, Any]:
    from sluice import flow, task
    from sluice.task_runners import DaskTaskRunner

    return _flow_side(flow, task, DaskTaskRunner(address=address), n)


def _prefect(address: str, n: int) -> dict[str, Any]:
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    return _flow_side(flow, task, DaskTaskRunner(address=address), n)


def _flow_side(flow: Any, task: Any, runner: Any, n: int) -> dict[str, Any]:
    add_one_task = task(add_one)
    timings: dict[str, float] = {}

    def mapper_fn(count: int) -> int:
        t0 = time.perf_counter()
        values = [f.result() for f in add_one_task.map(range(count))]
        timings["map_s"] = time.perf_counter() - t0
        return sum(values)

    # Not decorator syntax: `flow` is either side's decorator, untyped here.
    mapper = flow(task_runner=runner, name="mapper")(mapper_fn)
    started = time.perf_counter()
    total = mapper(n)
    return {"map_s": timings["map_s"], "call_s": time.perf_counter() - started, "values": total}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def side_python(side: str, args: argparse.Namespace) -> str:
    if side == "prefect":
        return args.prefect_python or str(PREFECT_VENV / "bin" / "python")
    local = REPO_DIR / ".venv" / "bin" / "python"
    return args.sluice_python or (str(local) if local.exists() else sys.executable)


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLUICE_"))}
    env.update(
        SLUICE_HOME=str(home / "sluice"),
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # prefect-dask's workers each start their own ephemeral API server (no
        # PREFECT_API_URL is set); on a loaded 2-core machine that takes longer
        # than the 20 s default, and the tasks fail instead of running slowly.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PYTHONPATH=os.pathsep.join([str(REPO_DIR / "src"), env.get("PYTHONPATH", "")]),
    )
    return env


def run_side(side: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one child; its result, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory(prefix=f"bench-dask-{side}-") as home:
        command = [side_python(side, args), str(Path(__file__)), "--child", side, "--n", str(n)]
        started = time.perf_counter()
        # Its own process group: on timeout the cluster's worker processes
        # (and Prefect's servers) go with it.
        proc = subprocess.Popen(
            command,
            env=child_env(Path(home)),
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"error": f"timeout >{args.timeout:.0f}s"}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of a finished child
        wall = time.perf_counter() - started
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            result["process_s"] = wall
            return result
    lines = stderr.strip().splitlines() or ["no output"]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return {"error": f"exit {proc.returncode}: {(errors or lines)[-1].strip()[:120]}"}


def cell(result: dict[str, Any], key: str) -> str:
    if "error" in result:
        return str(result["error"])
    return f"{result[key]:.2f} s"


def ratio(result: dict[str, Any], raw: dict[str, Any], key: str) -> str:
    if "error" in result or "error" in raw:
        return "-"
    return f"{result[key] / raw[key]:.1f}x"


def print_table(results: dict[tuple[str, int], dict[str, Any]], sizes: list[int]) -> None:
    rows = [("map wall", "map_s"), ("flow call", "call_s"), ("whole process", "process_s")]
    print(
        "| N | measure | raw Dask | Sluice | Prefect 3.9.1 + prefect-dask "
        f"| Sluice / raw (goal <= {GOAL_RATIO:.0f}x) | Prefect / raw |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        raw = results.get(("raw", n), {"error": "skipped"})
        ours = results.get(("sluice", n), {"error": "skipped"})
        theirs = results.get(("prefect", n), {"error": "skipped"})
        for label, key in rows:
            print(
                f"| {n:,} | {label} | {cell(raw, key)} | {cell(ours, key)} | {cell(theirs, key)} "
                f"| {ratio(ours, raw, key)} | {ratio(theirs, raw, key)} |"
            )


def setup_prefect_dask(python: str) -> None:
    """Install prefect-dask (and the Dask the Sluice side uses) into the Prefect venv."""
    import importlib.metadata

    dask_version = importlib.metadata.version("distributed")
    base = [python, "-m", "pip", "install", "--quiet"]
    # prefect 3.9.1 pins a certifi newer than PyPI has: keep pip away from
    # re-resolving prefect itself, install prefect-dask's own needs explicitly.
    subprocess.run([*base, "--no-deps", "prefect-dask"], check=True)
    subprocess.run(
        [*base, f"dask[distributed]=={dask_version}", "-c", str(PREFECT_CONSTRAINTS)], check=True
    )
    subprocess.run([python, "-c", "import prefect_dask, prefect; print(prefect.__version__)"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per child")
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--sluice-python")
    parser.add_argument("--prefect-python")
    parser.add_argument("--setup-prefect-dask", action="store_true")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT_MARKER + json.dumps(child(args.child, args.n)), flush=True)
        return 0
    if args.setup_prefect_dask:
        setup_prefect_dask(side_python("prefect", args))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    sides = [s for s in SIDES if not (s == "prefect" and args.skip_prefect)]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for n in sizes:
        for side in sides:
            print(f"bench-dask: {side} N={n} ...", file=sys.stderr, flush=True)
            results[(side, n)] = run_side(side, n, args)
            print(f"bench-dask: {side} N={n}: {results[(side, n)]}", file=sys.stderr, flush=True)
    print_table(results, sizes)
    if args.json:
        rows = [{"side": s, "n": n, **r} for (s, n), r in results.items()]
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
