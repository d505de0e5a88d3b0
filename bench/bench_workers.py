"""Workers: pickup latency and hello-world runs per second, Sluice vs Prefect 3.9.1.

Both sides, default settings, one worker with a concurrency limit of 4 running
each flow run in a subprocess from a deployment of a local ``hello.py``:

- Sluice: ``sluice worker start --pool bench --limit-concurrency 4`` on the
  embedded SQLite store (no server: the one-machine mode).
- Prefect: ``prefect server start`` on a free port, ``prefect work-pool create
  --type process``, ``prefect --no-prompt deploy hello.py:hello``,
  ``prefect worker start --pool bench --limit 4``.

Figures (from each run's recorded state history, so both sides are measured
the same way; Sluice is measured twice, on the embedded store and through a
``sluice server start`` on SQLite, the setting Prefect always uses):

- pickup -> Pending: from the moment a run is due (its scheduled time) to its
  Pending state, which the worker records right before it spawns the run's
  process (median of ``--samples`` runs, each made due while the worker is idle);
- pickup -> Running: from due to the Running state the flow's own process records;
- runs/s: ``--runs`` hello-world runs due at once; completed runs per second from
  the moment they are due to the last one's end.

Run: ``.venv/bin/python bench/bench_workers.py [--samples 5] [--runs 40]
[--prefect-python bench/.prefect-venv/bin/python] [--skip-prefect]``.
The same file is the driver each side's interpreter runs (``--driver``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PICKUP_GOAL_S = 1.0
HELLO = """
from {package} import flow


@flow
def hello(name: str = "world") -> str:
    return f"hello {{name}}"
"""


# -- the driver (runs inside each side's interpreter) ---------------------------------------
def _sluice_side() -> tuple[Any, Any]:
    from sluice.backend.factory import get_backend
    from sluice.deployments import run_deployment

    backend: Any = get_backend()

    def create(due: _dt.datetime) -> str:
        return run_deployment("hello/bench", timeout=0, scheduled_time=due).id

    def states(run_id: str) -> list[tuple[str, float]]:
        return [(s.type.value, s.timestamp.timestamp()) for s in backend.read_states(run_id)]

    return create, states


def _prefect_side() -> tuple[Any, Any]:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    client = get_client(sync_client=True)
    client.__enter__()

    def create(due: _dt.datetime) -> str:
        run = run_deployment("hello/bench", timeout=0, scheduled_time=due)
        return str(run.id)

    def states(run_id: str) -> list[tuple[str, float]]:
        found = client.read_flow_run_states(run_id)
        return [(s.type.value, s.timestamp.timestamp()) for s in found]

    return create, states


def drive(side: str, samples: int, runs: int, timeout: float) -> dict[str, Any]:
    """Create runs, wait for them, and report their due times and state timestamps."""
    create, states = _sluice_side() if side == "sluice" else _prefect_side()

    def wait_done(ids: list[str], deadline: float) -> dict[str, list[tuple[str, float]]]:
        history: dict[str, list[tuple[str, float]]] = {}
        while time.monotonic() < deadline:
            history = {i: states(i) for i in ids}
            if all(any(t in ("COMPLETED", "FAILED", "CRASHED") for t, _ in h)
                   for h in history.values()):  # fmt: skip
                return history
            time.sleep(0.2)
        raise TimeoutError(f"{side}: runs not finished in time")

    deadline = time.monotonic() + timeout
    latency = []
    for _ in range(samples):
        due = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=2)
        run_id = create(due)
        (history,) = wait_done([run_id], deadline).values()
        latency.append({"due": due.timestamp(), "states": history})
    due = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=1)
    ids = [create(due) for _ in range(runs)]
    done = wait_done(ids, deadline)
    return {"latency": latency, "burst_due": due.timestamp(), "burst": list(done.values())}


# -- the orchestrator -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLUICE_"))}
    env.update(extra)
    return env


def spawn(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def check(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]} {done.stdout[-2000:]}")


def run_driver(python: str, side: str, env: dict[str, str], cwd: Path, args: Any) -> Any:
    cmd = [python, str(Path(__file__).resolve()), "--driver", side,
           "--samples", str(args.samples), "--runs", str(args.runs),
           "--timeout", str(args.timeout)]  # fmt: skip
    done = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=args.timeout + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"{side} driver failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_sluice(work: Path, args: Any, with_server: bool = False) -> Any:
    """The Sluice side on the embedded store, or (``with_server``) through a
    ``sluice server start`` on SQLite with the worker and driver as its clients."""
    python = str(ROOT / ".venv" / "bin" / "python")
    sluice = str(ROOT / ".venv" / "bin" / "sluice")
    label = "sluice-server" if with_server else "sluice"
    project = work / label
    project.mkdir(parents=True)
    (project / "hello.py").write_text(HELLO.format(package="sluice"))
    env = clean_env({"SLUICE_HOME": str(work / f"{label}-home"), "PYTHONPATH": str(ROOT / "src")})
    server = None
    if with_server:
        port = free_port()
        server = spawn([sluice, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                       env, project, work / "sluice-server.log")  # fmt: skip
        wait_healthy(f"http://127.0.0.1:{port}/api/health", 60)
        env["SLUICE_API_URL"] = f"http://127.0.0.1:{port}"
    worker = None
    try:
        check([sluice, "deploy", "hello.py:hello", "--name", "bench", "--pool", "bench"],
              env, project)  # fmt: skip
        worker = spawn([sluice, "worker", "start", "--pool", "bench", "--limit-concurrency",
                        "4"], env, project, work / f"{label}-worker.log")  # fmt: skip
        time.sleep(2)
        return run_driver(python, "sluice", env, project, args)
    finally:
        if worker is not None:
            stop(worker)
        if server is not None:
            stop(server)


def bench_prefect(work: Path, args: Any) -> Any:
    python = args.prefect_python
    prefect = str(Path(python).with_name("prefect"))
    project = work / "prefect"
    project.mkdir(parents=True)
    (project / "hello.py").write_text(HELLO.format(package="prefect"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = clean_env({
        "PREFECT_HOME": str(work / "prefect-home"), "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
    })  # fmt: skip
    server = spawn([prefect, "server", "start", "--port", str(port), "--host", "127.0.0.1"],
                   env, project, work / "prefect-server.log")  # fmt: skip
    worker = None
    try:
        wait_healthy(f"{api}/health", 120)
        check([prefect, "work-pool", "create", "bench", "--type", "process"], env, project)
        check([prefect, "--no-prompt", "deploy", "hello.py:hello", "--name", "bench",
               "--pool", "bench"], env, project, timeout=300)  # fmt: skip
        worker = spawn([prefect, "worker", "start", "--pool", "bench", "--limit", "4"],
                       env, project, work / "prefect-worker.log")  # fmt: skip
        time.sleep(5)
        return run_driver(python, "prefect", env, project, args)
    finally:
        if worker is not None:
            stop(worker)
        stop(server)


def wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {timeout} s")


def figures(raw: Any) -> dict[str, float]:
    def first(history: list[list[Any]], kind: str) -> float:
        return float(min(t for k, t in history if k == kind))

    pending = [first(s["states"], "PENDING") - s["due"] for s in raw["latency"]]
    running = [first(s["states"], "RUNNING") - s["due"] for s in raw["latency"]]
    ends = [max(t for _, t in h) for h in raw["burst"]]
    span = max(ends) - raw["burst_due"]
    return {
        "pending": statistics.median(pending),
        "running": statistics.median(running),
        "running_max": max(running),
        "rate": len(raw["burst"]) / span,
    }


def table(
    sluice: dict[str, float],
    served: dict[str, float] | str | None,
    prefect: dict[str, float] | str | None,
) -> str:
    rows = [
        ("pickup: due -> Pending, median (s)", "pending", False),
        ("pickup: due -> Running, median (s)", "running", False),
        ("pickup: due -> Running, worst (s)", "running_max", False),
        ("hello-world runs/s, limit 4", "rate", True),
    ]
    lines = [
        "| figure | sluice (embedded) | sluice (server) | prefect 3.9.1 (server) "
        "| prefect / sluice embedded | prefect / sluice server |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def cell(side: dict[str, float] | str | None, key: str) -> str:
        if isinstance(side, dict):
            return f"{side[key]:.2f}"
        return side or "-"

    def ratio(ours: dict[str, float] | str | None, key: str, higher_better: bool) -> str:
        if not isinstance(ours, dict) or not isinstance(prefect, dict):
            return "-"
        mine, theirs = ours[key], prefect[key]
        if not mine or not theirs:
            return "-"
        return f"{(mine / theirs) if higher_better else (theirs / mine):.1f}x"

    for label, key, higher_better in rows:
        lines.append(
            f"| {label} | {cell(sluice, key)} | {cell(served, key)} | {cell(prefect, key)} "
            f"| {ratio(sluice, key, higher_better)} | {ratio(served, key, higher_better)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--driver", choices=["sluice", "prefect"])
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument(
        "--prefect-python", default=str(BENCH_DIR / ".prefect-venv" / "bin" / "python")
    )
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(drive(args.driver, args.samples, args.runs, args.timeout)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        work = Path(tmp)
        print("sluice side ...", file=sys.stderr)
        sluice = figures(bench_sluice(work, args))
        print("sluice side, through a server ...", file=sys.stderr)
        served: dict[str, float] | str | None
        try:
            served = figures(bench_sluice(work, args, with_server=True))
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            served = f"error: {str(exc).splitlines()[0][:80]}"
        prefect: dict[str, float] | str | None = None
        if not args.skip_prefect:
            print("prefect side ...", file=sys.stderr)
            try:
                prefect = figures(bench_prefect(work, args))
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                prefect = f"error: {str(exc).splitlines()[0][:80]}"
    print(table(sluice, served, prefect))
    ok = sluice["running_max"] <= PICKUP_GOAL_S
    print(f"\npickup goal (due -> Running <= {PICKUP_GOAL_S} s): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
