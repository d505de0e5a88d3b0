"""Client mode vs embedded mode (and Prefect against its own server), and ingest rate.

Runs the core workloads (``bench/workloads/sluice_sequential.py`` and
``sluice_map.py``) twice, each in a fresh child process with an empty home:
embedded (the child writes SQLite itself) and client mode (``SLUICE_API_URL``
points at a real ``sluice server start`` on 127.0.0.1, with its own empty
store). A workload's time ends after the flow's final flush, so in client
mode it includes delivery to the server. The sequential workload also runs
on Prefect 3.9.1 (``bench/.prefect-venv``, made by ``bench/run.py
--setup-prefect``) against its own ``prefect server start`` on a free
127.0.0.1 port (SQLite, ``PREFECT_API_URL`` set), bounded by
``--prefect-timeout``. Then it posts ready-made ingest batches of
task-run-state records to a fresh server and reports records per second as
the server acknowledges them (durable on 202).

Run: ``.venv/bin/python bench/bench_client.py [--sequential 1000] [--map 10000]
[--ingest 100000] [--repeat 3] [--skip-prefect]`` (the best of ``--repeat``
runs is kept; Prefect runs ``--prefect-repeat`` times, default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORKLOADS = BENCH_DIR / "workloads"
PREFECT_PYTHON = BENCH_DIR / ".prefect-venv" / "bin" / "python"
MARKER = "BENCH-RESULT "
GOAL_RATIO = 2.0
#: seconds to healthy of every server this run started (the table shows best and median)
STARTUPS: list[float] = []


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(home: Path, home_var: str = "SLUICE_HOME", **extra: str) -> dict[str, str]:
    """The environment without inherited SLUICE_*/PREFECT_* settings, with its own home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "PREFECT_"))}
    env[home_var] = str(home)
    env.update(extra)
    return env


def healthy(url: str) -> bool:
    """True when the server's health endpoint answers (Sluice's and Prefect's alike)."""
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a server's process group, SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


@contextmanager
def server(home: Path, fresh: bool = True) -> Iterator[tuple[str, float]]:
    """A real server on 127.0.0.1 over ``home``'s store (a new, empty one unless
    ``fresh`` is false): (its URL, seconds to healthy)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home.mkdir(parents=True, exist_ok=not fresh)
    command = [sys.executable, "-m", "sluice", "server", "start", "--port", str(port)]
    command += ["--log-level", "warning"]
    with open(home / "server.log", "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=clean_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not healthy(url):
            if process.poll() is not None or time.perf_counter() - started > 30:
                raise RuntimeError((home / "server.log").read_text())
            time.sleep(0.01)
        STARTUPS.append(time.perf_counter() - started)
        yield url, STARTUPS[-1]
    finally:
        stop(process)


@contextmanager
def prefect_server(python: Path, home: Path, timeout: float) -> Iterator[str]:
    """``prefect server start`` on a free 127.0.0.1 port over a new SQLite database in
    ``home``: its API URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home.mkdir(parents=True)
    command = [str(python), "-m", "prefect", "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = clean_env(home, "PREFECT_HOME", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    with open(home / "server.log", "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while not healthy(url):
            if process.poll() is not None or time.perf_counter() - started > timeout:
                tail = (home / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"prefect server did not become healthy:\n{tail}")
            time.sleep(0.1)
        yield f"{url}/api"
    finally:
        stop(process)


def run_workload(
    script: str,
    n: int,
    home: Path,
    api_url: str = "",
    *,
    python: Path | None = None,
    timeout: float = 600,
) -> dict[str, object]:
    """Run one workload script in a child process; its BENCH-RESULT record.

    ``prefect_*`` scripts get ``PREFECT_HOME`` and ``PREFECT_API_URL``, the others
    ``SLUICE_HOME`` and ``SLUICE_API_URL``.
    """
    prefix = "PREFECT" if script.startswith("prefect_") else "SLUICE"
    extra = {f"{prefix}_API_URL": api_url} if api_url else {}
    if prefix == "PREFECT":
        extra["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        # Its SQLite server answers 503 while it catches up after a 1,000-task
        # run; the client waits that out (default: 5 retries, then it fails).
        extra["PREFECT_CLIENT_MAX_RETRIES"] = "20"
    home.mkdir(parents=True)
    proc = subprocess.run(
        [str(python or sys.executable), str(WORKLOADS / script), str(n)],
        env=clean_env(home, f"{prefix}_HOME", **extra),
        cwd=WORKLOADS,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            result: dict[str, object] = json.loads(line[len(MARKER) :])
            if not result.get("ok"):
                raise RuntimeError(f"{script} {n} returned a wrong result: {result}")
            return result
    raise RuntimeError(f"{script} {n} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def best_time(script: str, key: str, n: int, repeat: int, work: Path, client: bool) -> float:
    """The best ``key`` time of ``repeat`` runs, each with fresh homes (and server)."""
    times = []
    for i in range(repeat):
        run_dir = work / f"{script}-{n}-{'client' if client else 'embedded'}-{i}"
        if client:
            with server(run_dir / "server") as (url, _):
                result = run_workload(script, n, run_dir / "client", url)
        else:
            result = run_workload(script, n, run_dir / "home")
        times.append(float(result[key]))  # type: ignore[arg-type]
    return min(times)


def prefect_time(n: int, repeat: int, work: Path, python: Path, timeout: float) -> str | float:
    """The best sequential ``total_s`` of Prefect against its own server, or why there
    is none (not installed, failed, timed out)."""
    if not python.exists():
        return "n/a (no bench/.prefect-venv; run bench/run.py --setup-prefect)"
    times = []
    for i in range(repeat):
        run_dir = work / f"prefect-sequential-{n}-{i}"
        deadline = time.monotonic() + timeout
        try:
            with prefect_server(python, run_dir / "server", timeout) as url:
                left = max(1.0, deadline - time.monotonic())
                result = run_workload(
                    "prefect_sequential.py",
                    n,
                    run_dir / "client",
                    url,
                    python=python,
                    timeout=left,
                )
        except subprocess.TimeoutExpired:
            return f"timeout >{timeout:g}s"
        except RuntimeError as exc:
            return f"error: {str(exc).strip().splitlines()[-1][:60]}"
        times.append(float(result["total_s"]))  # type: ignore[arg-type]
    return min(times)


def ingest_rate(records: int, per_batch: int, work: Path) -> tuple[float, float]:
    """(records/s the server acknowledged, seconds to healthy) for ``records``
    task-run-state records posted in batches of ``per_batch``, bodies built beforehand."""
    from sluice.api_schemas import IngestBatch
    from sluice.backend import wire
    from sluice.schemas import StateRecord, TaskRunRecord, new_id
    from sluice.states import Completed

    flow_run_id = new_id()
    bodies = []
    for start in range(0, records, per_batch):
        batch = IngestBatch()
        for i in range(start, min(start + per_batch, records)):
            run = TaskRunRecord(new_id(), "t", f"t-{i}", flow_run_id, call_index=i)
            state = Completed()
            run.apply(state)
            batch.task_runs.append(run)
            batch.states.append(StateRecord.from_state(run.id, "task", state))
        bodies.append(wire.encode_batch(batch))
    with server(work / "ingest-server") as (url, startup_s):
        started = time.perf_counter()
        accepted = 0
        for body in bodies:
            request = urllib.request.Request(
                f"{url}/api/ingest",
                data=body,
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                accepted += int(json.loads(response.read())["accepted"])
        elapsed = time.perf_counter() - started
    # Each task-run-state record is a run row and its state: two on the wire.
    if accepted != 2 * records:
        raise RuntimeError(f"The server accepted {accepted} of {2 * records} records")
    return records / elapsed, startup_s


def main() -> None:
    """Measure, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=1000, help="tasks called in a row")
    parser.add_argument("--map", type=int, default=10_000, help="tasks in one .map()")
    parser.add_argument("--ingest", type=int, default=100_000, help="records to ingest")
    parser.add_argument("--ingest-batch", type=int, default=5000, help="records per request")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--skip-prefect", action="store_true", help="no Prefect column")
    parser.add_argument("--prefect-python", type=Path, default=PREFECT_PYTHON)
    parser.add_argument("--prefect-repeat", type=int, default=1, help="Prefect runs (best kept)")
    parser.add_argument(
        "--prefect-timeout",
        type=float,
        default=600.0,
        help="seconds one Prefect run (server start and workload) may take",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sluice-bench-client-") as tmp:
        work = Path(tmp)
        rows: list[tuple[str, float, float, str | float | None]] = []
        for label, script, key, n in (
            (
                f"{args.sequential:,} sequential tasks",
                "sluice_sequential.py",
                "total_s",
                args.sequential,
            ),
            (f"{args.map:,}-task map", "sluice_map.py", "wall_s", args.map),
        ):
            embedded = best_time(script, key, n, args.repeat, work, client=False)
            client = best_time(script, key, n, args.repeat, work, client=True)
            prefect: str | float | None = None
            if script == "sluice_sequential.py" and not args.skip_prefect:
                prefect = prefect_time(
                    n, args.prefect_repeat, work, args.prefect_python, args.prefect_timeout
                )
            rows.append((label, embedded, client, prefect))
        rate, _ = ingest_rate(args.ingest, args.ingest_batch, work)

    print(
        f"\n{'workload':<26}{'embedded s':>12}{'client s':>12}{'client/emb':>12}"
        f"  goal <= {GOAL_RATIO:g}x {'prefect+server s':>18}{'prefect/client':>16}"
    )
    for label, embedded, client, prefect in rows:
        ratio = client / embedded
        verdict = "ok" if ratio <= GOAL_RATIO else "OVER"
        line = f"{label:<26}{embedded:>12.3f}{client:>12.3f}{ratio:>11.2f}x  {verdict:<11}"
        if isinstance(prefect, float):
            line += f"{prefect:>18.3f}{prefect / client:>15.1f}x"
        elif prefect is not None:
            line += f"  {prefect}"
        else:
            line += f"{'-':>18}{'-':>16}"
        print(line)
    print(
        f"\nserver ingest: {rate:,.0f} task-run-state records/s "
        f"({args.ingest:,} records, {args.ingest_batch:,} per request; goal >= 10,000/s)"
    )
    starts = sorted(STARTUPS)
    print(
        f"server start to healthy: best {starts[0]:.2f} s, median {starts[len(starts) // 2]:.2f} s "
        f"of {len(starts)} starts (goal <= 1 s)"
    )


if __name__ == "__main__":
    main()
