#!/usr/bin/env python3
"""Sluice vs. Prefect benchmark runner (stdlib only, any Python >= 3.10).

Every measurement runs in a fresh child process with its own empty home
directory (SLUICE_HOME / PREFECT_HOME under ``bench/.work/``), so import
time and peak RSS are honest and databases start empty.  Children write
their stdout/stderr to files next to that home; each workload script
prints one ``BENCH-RESULT {json}`` line that this runner parses.

Examples::

    python bench/run.py                          # everything, both sides
    python bench/run.py --only import,hello      # a subset of workloads
    python bench/run.py --skip-prefect --sizes 1000,10000
    python bench/run.py --json results.json      # also save raw numbers
    python bench/run.py --setup-prefect          # (re)create the Prefect venv

See bench/README.md for what each workload measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORKLOAD_DIR = BENCH_DIR / "workloads"
WORK_DIR = BENCH_DIR / ".work"
PREFECT_VENV = BENCH_DIR / ".prefect-venv"
PREFECT_VERSION = "3.9.1"
# prefect 3.9.1 declares certifi>=2026.10.19, newer than any certifi on PyPI
# when this was written; these requirements are installed unpinned instead.
RELAXED_REQUIREMENTS = ("certifi",)
# Exact dependency versions the published Prefect figures were measured with.
PREFECT_CONSTRAINTS = BENCH_DIR / "prefect-constraints.txt"

WORKLOADS = ("import", "hello", "sequential", "durability", "map")
DEFAULT_SIZES = (1000, 10_000, 100_000)
RECORDS_SIZE = 10_000
RESULT_MARKER = "BENCH-RESULT "
SAMPLE_INTERVAL_S = 0.1
MB = 1024.0  # KiB per MiB

BUDGETS = {
    "import": ("<=", 0.15),
    "hello": ("<=", 0.5),
    "per_task_us": ("<=", 50.0),
    "durability_p99_us": ("<=", 5000.0),
    "map_wall_10000": ("<=", 2.0),
    "map_rss_10000": ("<=", 200.0),
}


# --------------------------------------------------------------------------
# Prefect virtualenv
# --------------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    """Path of the interpreter inside a virtualenv."""
    return venv / "bin" / "python"


def installed_prefect_version(python: Path) -> str | None:
    """Prefect's installed distribution version for ``python``, or None."""
    code = "from importlib.metadata import version; print(version('prefect'))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_base_python() -> str:
    """Pick an interpreter Prefect 3.9 supports (3.11 <= version < 3.16)."""
    code = "import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 16) else 1)"
    candidates = [sys.executable] + [
        shutil.which(name) for name in ("python3.13", "python3.12", "python3.11", "python3")
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", code]).returncode == 0:
            return candidate
    raise SystemExit("setup-prefect: no Python 3.11-3.15 interpreter found on PATH")


def pip(python: Path, log: Path, *args: str) -> bool:
    """Run ``python -m pip ARGS``, appending its output to ``log``; True on success."""
    with log.open("a") as fh:
        fh.write(f"\n$ {python} -m pip {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run(
            [str(python), "-m", "pip", *args], stdout=fh, stderr=subprocess.STDOUT
        )
    return proc.returncode == 0


def wheel_requirements(wheel: Path) -> list[str]:
    """Runtime requirements (no extras) of a wheel, with pins in RELAXED_REQUIREMENTS dropped."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    requirements = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req:
            continue
        project = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]
        if project.lower().replace("_", "-") in RELAXED_REQUIREMENTS:
            marker = req.split(";", 1)[1] if ";" in req else ""
            req = project + (f"; {marker.strip()}" if marker else "")
        requirements.append(req)
    return requirements


def constraint_args() -> list[str]:
    """``-c FILE`` pinning Prefect's dependency tree, when the file exists."""
    return ["-c", str(PREFECT_CONSTRAINTS)] if PREFECT_CONSTRAINTS.exists() else []


def install_prefect_relaxed(python: Path, log: Path, version: str) -> None:
    """Install prefect==VERSION's dependencies with relaxed pins, then prefect itself."""
    wheel_dir = Path(tempfile.mkdtemp(prefix="prefect-wheel-", dir=WORK_DIR))
    if not pip(python, log, "download", "--no-deps", f"prefect=={version}", "-d", str(wheel_dir)):
        raise SystemExit(f"setup-prefect: pip download failed, see {log}")
    wheel = next(wheel_dir.glob(f"prefect-{version}-*.whl"))
    requirements = wheel_dir / "requirements.txt"
    requirements.write_text("\n".join(wheel_requirements(wheel)) + "\n")
    if not pip(python, log, "install", "-r", str(requirements), *constraint_args()):
        raise SystemExit(f"setup-prefect: installing prefect's requirements failed, see {log}")
    if not pip(python, log, "install", "--no-deps", str(wheel)):
        raise SystemExit(f"setup-prefect: installing the prefect wheel failed, see {log}")
    shutil.rmtree(wheel_dir, ignore_errors=True)


def smoke_test_prefect(python: Path) -> None:
    """Run the hello-world workload once against a temporary PREFECT_HOME."""
    with tempfile.TemporaryDirectory(prefix="prefect-smoke-", dir=WORK_DIR) as home:
        env = clean_env({"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
        proc = subprocess.run(
            [str(python), str(WORKLOAD_DIR / "prefect_hello.py")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    if proc.returncode != 0 or '"ok": true' not in proc.stdout:
        raise SystemExit(
            f"setup-prefect: trivial flow failed: {error_summary(proc.stderr, proc.returncode)}"
        )


def setup_prefect(venv: Path = PREFECT_VENV, version: str = PREFECT_VERSION) -> Path:
    """Create (or repair) the Prefect virtualenv; return its interpreter.

    These are the exact steps that work on the project's machines:

    1. ``python3 -m venv bench/.prefect-venv`` (Prefect 3.9 needs Python >= 3.11)
    2. ``pip install --upgrade pip``
    3. ``pip install prefect==3.9.1 -c bench/prefect-constraints.txt`` --
       fails today: prefect pins ``certifi>=2026.10.19``, newer than any
       certifi release on PyPI.
    4. Fallback: ``pip download --no-deps prefect==3.9.1``, write the wheel's
       Requires-Dist (without extras, certifi unpinned) to a requirements
       file, ``pip install -r requirements.txt -c bench/prefect-constraints.txt``,
       then ``pip install --no-deps prefect-3.9.1-py3-none-any.whl``.
    5. Check ``prefect.__version__`` and run a trivial flow (ephemeral server).
    """
    python = venv_python(venv)
    if installed_prefect_version(python) == version:
        log_line(f"setup-prefect: {venv} already has prefect {version}")
        return python
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    log = WORK_DIR / "setup-prefect.log"
    log.write_text("")
    if venv.exists():
        shutil.rmtree(venv)
    log_line(f"setup-prefect: creating {venv} (pip output: {log})")
    subprocess.run([find_base_python(), "-m", "venv", str(venv)], check=True)
    pip(python, log, "install", "--upgrade", "pip")
    if not pip(python, log, "install", f"prefect=={version}", *constraint_args()):
        log_line("setup-prefect: plain install failed (certifi pin); installing with relaxed pins")
        install_prefect_relaxed(python, log, version)
    found = installed_prefect_version(python)
    if found != version:
        raise SystemExit(f"setup-prefect: expected prefect {version}, found {found}")
    log_line("setup-prefect: running a trivial flow ...")
    smoke_test_prefect(python)
    log_line(f"setup-prefect: ok, prefect {version} in {venv}")
    return python


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment minus any PREFECT_*/SLUICE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLUICE_"))}
    env.update(extra)
    return env


@dataclass
class Side:
    """One engine under test: its interpreter and how to point it at a home dir."""

    name: str
    python: str
    home_var: str
    workload_prefix: str
    env: dict[str, str] = field(default_factory=dict)
    enabled: bool = True

    def child_env(self, home: Path) -> dict[str, str]:
        """Environment for one child: default settings, a private home dir."""
        return clean_env({**self.env, self.home_var: str(home)})

    def script(self, workload: str) -> Path:
        """Workload script file for this side."""
        return WORKLOAD_DIR / f"{self.workload_prefix}_{workload}.py"


@dataclass
class ChildRun:
    """Outcome of one child process."""

    argv: list[str]
    log_dir: str
    returncode: int | None = None
    wall_s: float | None = None
    maxrss_kb: int | None = None
    tree_peak_kb: int | None = None
    timed_out: bool = False
    data: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the child exited cleanly and printed a result."""
        return self.error is None and self.data is not None

    def get(self, key: str) -> Any:
        """One field of the workload's result line (KeyError if absent)."""
        return (self.data or {})[key]


def proc_children() -> dict[int, list[int]]:
    """Map of parent pid -> child pids, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children, tree, todo = proc_children(), [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def rss_kb(pid: int) -> int:
    """Current resident set size of ``pid`` in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            resident_pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process tree until stopped (Linux only)."""

    def __init__(self, root: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_kb: int | None = None
        self.pids: list[int] = [root]
        self._stop_event = threading.Event()
        self._supported = os.path.isdir("/proc/self")

    def sample(self) -> None:
        """Take one sample of the whole tree."""
        self.pids = process_tree(self.root)
        total = sum(rss_kb(pid) for pid in self.pids)
        if total and (self.peak_kb is None or total > self.peak_kb):
            self.peak_kb = total

    def run(self) -> None:
        """Sample every ``interval`` seconds until ``stop`` is called."""
        while self._supported:
            self.sample()
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop_event.set()
        self.join()


def kill_tree(pgid: int, pids: list[int]) -> None:
    """SIGKILL a child's process group and any descendants seen in it."""
    for kill, target in [(os.killpg, pgid), *[(os.kill, pid) for pid in pids]]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(target, signal.SIGKILL)


def error_summary(stderr: str, returncode: int | None) -> str:
    """First line of the error a child died with (its exception line, if any)."""
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    exception = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b:?")
    for line in reversed(lines):
        if exception.match(line):
            return line
    if returncode is not None and returncode < 0:
        return f"killed by signal {-returncode}"
    return lines[-1] if lines else f"exit code {returncode}"


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The last BENCH-RESULT JSON object printed by a workload, if any."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
                return result
            except json.JSONDecodeError:
                return None
    return None


def wait_child(
    proc: subprocess.Popen[bytes], timeout: float
) -> tuple[Any, bool, list[int], int | None]:
    """Wait for ``proc``, killing its tree after ``timeout`` seconds.

    Returns the child's rusage, whether it timed out, the pids last seen
    in its tree and the sampled peak RSS of the tree (KiB).
    """
    sampler = TreeSampler(proc.pid)
    sampler.start()
    expired = threading.Event()

    def on_timeout() -> None:
        expired.set()
        kill_tree(proc.pid, sampler.pids)

    timer = threading.Timer(timeout, on_timeout)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage, expired.is_set(), sampler.pids, sampler.peak_kb


def maxrss_to_kb(ru_maxrss: int) -> int:
    """ru_maxrss is KiB on Linux but bytes on macOS."""
    return ru_maxrss // 1024 if sys.platform == "darwin" else ru_maxrss


def run_child(
    side: Side, workload: str, args: list[Any], log_dir: Path, home: Path, timeout: float
) -> ChildRun:
    """Run one workload script in a fresh process and collect its measurements.

    Wall time is measured from spawn to exit; peak RSS comes from the
    child's rusage (largest single process among the child and the
    descendants it reaped) and from sampling the whole process tree.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    argv = [side.python, str(side.script(workload)), *map(str, args)]
    run = ChildRun(argv=argv, log_dir=str(log_dir))
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=side.child_env(home),
                cwd=log_dir,
                start_new_session=True,
            )
        except OSError as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            return run
        usage, run.timed_out, pids, run.tree_peak_kb = wait_child(proc, timeout)
        run.wall_s = time.perf_counter() - start
        kill_tree(proc.pid, pids)  # anything left behind, e.g. an orphaned server
    run.returncode = proc.returncode
    run.maxrss_kb = maxrss_to_kb(usage.ru_maxrss)
    run.data = parse_result(out_path.read_text(errors="replace"))
    run.error = child_error(run, err_path, timeout)
    return run


def child_error(run: ChildRun, err_path: Path, timeout: float) -> str | None:
    """Why a child run does not count, or None if it does."""
    if run.timed_out:
        return f"timeout >{timeout:g}s"
    if run.returncode != 0:
        return error_summary(err_path.read_text(errors="replace"), run.returncode)
    if run.data is None:
        return "no BENCH-RESULT line on stdout"
    if run.data.get("ok") is False:
        return run.data.get("error") or "wrong result"
    return None


# --------------------------------------------------------------------------
# Results table
# --------------------------------------------------------------------------

Cell = Any  # a number, or a string such as "error: ...", "timeout >900s", "n/a"


@dataclass
class Row:
    """One line of the results table."""

    key: str
    label: str
    unit: str  # "s", "us", "MB" or "count"
    budget: tuple[str, float] | None = None
    cells: dict[str, Cell] = field(default_factory=dict)


def fmt_value(value: Cell, unit: str) -> str:
    """Human formatting of one cell."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value) if value is not None else "n/a"
    if unit == "s":
        if value < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if unit == "us":
        return f"{value:.1f} µs" if value < 1000 else f"{value:,.0f} µs"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:,.0f}"


def fmt_ratio(row: Row) -> str:
    """prefect/sluice, when both sides have numbers."""
    sluice, prefect = row.cells.get("sluice"), row.cells.get("prefect")
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in (sluice, prefect)
    )
    if row.unit == "count" or not numeric or not sluice:
        return ""
    return f"{prefect / sluice:.1f}x"


def fmt_budget(row: Row) -> str:
    """Budget text plus whether the Sluice figure meets it."""
    if row.budget is None:
        return ""
    op, limit = row.budget
    text = f"{'=' if op == '==' else '<='} {fmt_value(limit, row.unit)}"
    value = row.cells.get("sluice")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return text
    met = value == limit if op == "==" else value <= limit
    return f"{text}  [{'ok' if met else 'OVER' if op == '<=' else 'MISMATCH'}]"


def clip(text: str, width: int = 48) -> str:
    """Shorten long cells (full text is in the JSON output)."""
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(rows: list[Row]) -> str:
    """Plain-text, column-aligned results table."""
    header = ["workload", "sluice", "prefect", "prefect/sluice", "budget"]
    body = [
        [
            row.label,
            clip(fmt_value(row.cells.get("sluice"), row.unit)),
            clip(fmt_value(row.cells.get("prefect"), row.unit)),
            fmt_ratio(row),
            fmt_budget(row),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    rule = "-+-".join("-" * w for w in widths)

    def render(line: list[str]) -> str:
        return " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()

    return "\n".join([render(header), rule] + [render(line) for line in body])


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------


def log_line(message: str) -> None:
    """Progress output (stderr, so stdout carries only the table)."""
    print(message, file=sys.stderr, flush=True)


class Bench:
    """Runs workloads for each side and fills in the table rows."""

    def __init__(self, sides: list[Side], opts: argparse.Namespace) -> None:
        self.sides, self.opts = sides, opts
        self.rows: dict[str, Row] = {}
        self.runs: dict[str, dict[str, list[dict[str, Any]]]] = {side.name: {} for side in sides}
        self.run_dir = WORK_DIR / time.strftime("run-%Y%m%d-%H%M%S")
        self.started = time.perf_counter()

    # -- bookkeeping -------------------------------------------------------

    def row(self, key: str, label: str, unit: str, budget: tuple[str, float] | None = None) -> Row:
        """Get or create the table row ``key`` (rows keep creation order)."""
        if key not in self.rows:
            self.rows[key] = Row(key, label, unit, budget)
        return self.rows[key]

    def child(
        self,
        side: Side,
        workload: str,
        tag: str,
        args: Sequence[Any] = (),
        home: Path | None = None,
    ) -> ChildRun:
        """Run one workload child for ``side`` and log a progress line."""
        log_dir = self.run_dir / side.name / tag
        run = run_child(
            side, workload, list(args), log_dir, home or log_dir / "home", self.opts.timeout
        )
        self.runs[side.name].setdefault(tag, []).append(asdict(run))
        summary = "ok" if run.ok else run.error
        log_line(
            f"[{time.perf_counter() - self.started:8.1f}s] {side.name:<7} {tag:<24} "
            f"{run.wall_s or 0:8.2f}s  {summary}"
        )
        return run

    def cleanup(self, home: Path) -> None:
        """Delete a finished workload's home dir unless --keep-homes."""
        if not self.opts.keep_homes:
            shutil.rmtree(home, ignore_errors=True)

    # -- workloads ---------------------------------------------------------

    def run_import(self, side: Side) -> None:
        """Best-of-N in-process ``import`` time, each in a fresh process."""
        n = self.opts.repeat
        runs = [self.child(side, "import", f"import-{i + 1}") for i in range(n)]
        row = self.row("import", f"import (best of {n})", "s", BUDGETS["import"])
        row.cells[side.name] = best(runs, lambda r: r.get("import_s"))
        for run in runs:
            self.cleanup(Path(run.log_dir) / "home")

    def run_hello(self, side: Side) -> None:
        """Best-of-N wall time of a whole hello-world process, timed from outside."""
        n = self.opts.repeat
        runs = [self.child(side, "hello", f"hello-{i + 1}") for i in range(n)]
        row = self.row("hello", f"hello-world process (best of {n})", "s", BUDGETS["hello"])
        row.cells[side.name] = best(runs, lambda r: r.wall_s)
        for run in runs:
            self.cleanup(Path(run.log_dir) / "home")

    def run_sequential(self, side: Side) -> None:
        """N direct task calls in one flow: total time and per-task overhead."""
        n = self.opts.seq_n
        run = self.child(side, "sequential", f"sequential-{n}", [n])
        total = self.row("seq_total", f"sequential N={n} total", "s")
        per_task = self.row(
            "seq_per_task", "sequential per-task overhead", "us", BUDGETS["per_task_us"]
        )
        # Sluice only: CPU per task of the flow's thread and of the others (the store writer)
        flow_cpu = self.row("seq_flow_cpu", "  of which flow-thread CPU", "us")
        other_cpu = self.row("seq_other_cpu", "  of which other threads' CPU", "us")
        total.cells[side.name] = cell(run, lambda r: r.get("total_s"))
        per_task.cells[side.name] = cell(run, lambda r: r.get("per_task_us"))
        flow_cpu.cells[side.name] = cell(run, lambda r: r.get("flow_thread_cpu_us"))
        other_cpu.cells[side.name] = cell(run, lambda r: r.get("other_threads_cpu_us"))
        self.cleanup(Path(run.log_dir) / "home")

    def run_durability(self, side: Side) -> None:
        """From a task's return to the commit of its completion (Sluice only): tasks
        returning at once, and tasks sleeping 1 ms (waiting on I/O)."""
        n = self.opts.seq_n
        for sleep_ms, kind in ((0, "trivial tasks"), (1, "1 ms tasks")):
            rows = [
                (f"durability_p50_{sleep_ms}", "p50_us", None),
                (f"durability_p99_{sleep_ms}", "p99_us", BUDGETS["durability_p99_us"]),
            ]
            run = None
            if side.name == "sluice":
                run = self.child(side, "durability", f"durability-{sleep_ms}ms", [n, sleep_ms])
            for key, field_name, budget in rows:
                label = f"durability window {field_name[:3]}, {n:,} {kind}"
                row = self.row(key, label, "us", budget)
                row.cells[side.name] = "n/a" if run is None else cell(run, result_field(field_name))
            if run is not None:
                self.cleanup(Path(run.log_dir) / "home")

    def run_map(self, side: Side, n: int) -> None:
        """``task.map`` over N items: wall time, peak RSS, and (once) stored records."""
        run = self.child(side, "map", f"map-{n}", [n])
        wall_budget, rss_budget = (
            (BUDGETS["map_wall_10000"], BUDGETS["map_rss_10000"]) if n == 10_000 else (None, None)
        )
        rows = [
            (f"map_wall_{n}", f"map N={n:,} wall", "s", wall_budget, lambda r: r.get("wall_s")),
            (
                f"map_rss_{n}",
                f"map N={n:,} peak RSS (largest process)",
                "MB",
                rss_budget,
                lambda r: r.maxrss_kb / MB,
            ),
            (
                f"map_tree_{n}",
                f"map N={n:,} peak RSS (process tree)",
                "MB",
                rss_budget,
                lambda r: tree_peak_mb(r),
            ),
        ]
        for key, label, unit, budget, value in rows:
            outside = unit if unit == "MB" else None
            self.row(key, label, unit, budget).cells[side.name] = cell(run, value, outside)
        if n == self.records_size():
            self.run_records(side, n, run)
        self.cleanup(Path(run.log_dir) / "home")

    def run_records(self, side: Side, n: int, map_run: ChildRun) -> None:
        """Count the task runs the store holds after the map workload."""
        row = self.row(
            f"records_{n}", f"task runs stored after map N={n:,}", "count", ("==", float(n))
        )
        if not map_run.ok:
            row.cells[side.name] = "n/a"
            return
        home = Path(map_run.log_dir) / "home"
        run = self.child(side, "records", f"records-{n}", home=home)
        row.cells[side.name] = cell(
            run, lambda r: "n/a" if r.get("task_runs") is None else r.get("task_runs")
        )

    def records_size(self) -> int:
        """Map size after which the records check runs."""
        sizes = self.opts.sizes
        return RECORDS_SIZE if RECORDS_SIZE in sizes else max(sizes)

    # -- driver ------------------------------------------------------------

    def run(self) -> list[Row]:
        """Run the selected workloads, interleaving sides, and return the rows."""
        log_line(f"logs and homes: {self.run_dir}")
        steps: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        for workload in self.opts.only:
            if workload == "map":
                steps += [(self.run_map, (n,)) for n in self.opts.sizes]
            else:
                steps.append((getattr(self, f"run_{workload}"), ()))
        for method, args in steps:
            for side in self.sides:
                if side.enabled:
                    method(side, *args)
        for row in self.rows.values():
            for side in self.sides:
                if not side.enabled:
                    row.cells.setdefault(side.name, "skipped")
        return list(self.rows.values())


def result_field(name: str) -> Callable[[ChildRun], Cell]:
    """A cell getter reading one field of a workload's result line."""
    return lambda run: run.get(name)


def tree_peak_mb(run: ChildRun) -> Cell:
    """Sampled peak RSS of the whole process tree, in MiB.

    Sampling can miss a short-lived peak, but the tree never held less than
    its largest process did, so the exact rusage peak is a floor.
    """
    if run.tree_peak_kb is None:
        return "n/a"
    return max(run.tree_peak_kb, run.maxrss_kb or 0) / MB


def cell(run: ChildRun, value: Callable[[ChildRun], Cell], unit: str | None = None) -> Cell:
    """A table cell for one run: its value, or its error text.

    With ``unit``, the value is measured from outside (like peak RSS) and
    stays meaningful for a killed child: a timeout then shows it as a floor.
    """
    if run.timed_out:
        if unit is not None:
            return f"{run.error}, >={fmt_value(value(run), unit)}"
        return run.error
    if not run.ok:
        return f"error: {run.error}"
    try:
        return value(run)
    except (KeyError, TypeError) as exc:
        return f"error: missing {exc}"


def best(runs: list[ChildRun], value: Callable[[ChildRun], Cell]) -> Cell:
    """Minimum of ``value`` over the successful runs, else the first error."""
    good = [cell(r, value) for r in runs if r.ok]
    numbers = [v for v in good if isinstance(v, (int, float))]
    if numbers:
        return min(numbers)
    return good[0] if good else cell(runs[0], value)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def default_sluice_python() -> str:
    """The repo's .venv interpreter if present, else the current one."""
    candidate = REPO_DIR / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def csv_list(text: str) -> list[str]:
    """Split a comma-separated option."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--only",
        type=csv_list,
        default=list(WORKLOADS),
        help=f"comma-separated workloads to run (default: all of {','.join(WORKLOADS)})",
    )
    p.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in csv_list(s)],
        default=list(DEFAULT_SIZES),
        help="comma-separated map sizes (default: 1000,10000,100000)",
    )
    p.add_argument("--seq-n", type=int, default=1000, help="tasks in the sequential workload")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of import and hello-world; the best is reported (default 3)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before one workload process is killed (default 900)",
    )
    p.add_argument("--skip-prefect", action="store_true", help="run the Sluice side only")
    p.add_argument("--skip-sluice", action="store_true", help="run the Prefect side only")
    p.add_argument(
        "--sluice-python",
        default=None,
        help="interpreter with sluice installed (default: REPO/.venv/bin/python "
        "or this interpreter, with REPO/src prepended to PYTHONPATH)",
    )
    p.add_argument(
        "--prefect-python",
        default=None,
        help=f"interpreter with prefect (default: {PREFECT_VENV.relative_to(REPO_DIR)}, "
        "created automatically when missing)",
    )
    p.add_argument(
        "--setup-prefect",
        action="store_true",
        help="create or repair the Prefect virtualenv, then exit",
    )
    p.add_argument(
        "--keep-homes",
        action="store_true",
        help="keep each workload's SLUICE_HOME/PREFECT_HOME under bench/.work/",
    )
    p.add_argument("--json", metavar="FILE", help="also write raw results as JSON")
    opts = p.parse_args(argv)
    unknown = set(opts.only) - set(WORKLOADS)
    if unknown:
        p.error(
            f"unknown workload(s) {', '.join(sorted(unknown))}; choose from {', '.join(WORKLOADS)}"
        )
    if not opts.sizes:
        p.error("--sizes needs at least one size")
    return opts


def make_sides(opts: argparse.Namespace) -> list[Side]:
    """The two engines under test, with the Prefect venv created if needed."""
    sluice_env = {}
    if opts.sluice_python is None and (REPO_DIR / "src" / "sluice").is_dir():
        # Default interpreter: bench the working tree even if it is not installed.
        sluice_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_DIR / "src"), os.environ.get("PYTHONPATH")])
        )
    prefect_python = opts.prefect_python or str(venv_python(PREFECT_VENV))
    needs_venv = not opts.skip_prefect and opts.prefect_python is None
    if needs_venv and installed_prefect_version(Path(prefect_python)) is None:
        setup_prefect()
    return [
        Side(
            "sluice",
            opts.sluice_python or default_sluice_python(),
            "SLUICE_HOME",
            "sluice",
            sluice_env,
            enabled=not opts.skip_sluice,
        ),
        Side(
            "prefect",
            prefect_python,
            "PREFECT_HOME",
            "prefect",
            {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
            enabled=not opts.skip_prefect,
        ),
    ]


def write_json(path: str, bench: Bench, rows: list[Row], opts: argparse.Namespace) -> None:
    """Save options, table rows and every child's raw measurements."""
    payload = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "options": {k: v for k, v in vars(opts).items()},
            "pythons": {side.name: side.python for side in bench.sides},
            "run_dir": str(bench.run_dir),
        },
        "rows": [asdict(row) for row in rows],
        "runs": bench.runs,
    }
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    opts = parse_args(argv)
    if opts.setup_prefect:
        setup_prefect()
        return 0
    bench = Bench(make_sides(opts), opts)
    rows = bench.run()
    print(format_table(rows))
    if opts.json:
        write_json(opts.json, bench, rows, opts)
        log_line(f"raw results: {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
