"""Records check (Sluice side): count task runs the Sluice store holds.

Run after the map workload with the same SLUICE_HOME.  Uses only the
public CLI, as a user would::

    sluice flow-run ls -o json
    sluice flow-run inspect ID -o json

The CLI's JSON shape is matched loosely (a list of runs or an object
wrapping one; task runs as a list or a count).  If the CLI is missing or
its output cannot be understood, ``task_runs`` is null and ``error``
explains why, so the runner prints "n/a".

Usage: SLUICE_HOME=... python sluice_records.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from _harness import emit

LIST_KEYS = ("flow_runs", "items", "data", "results", "runs")
COUNT_KEYS = ("task_run_count", "n_task_runs", "task_runs_count", "num_task_runs")
CLI_TIMEOUT_S = 300


class RecordsError(Exception):
    """The CLI failed or printed something this script cannot interpret."""


def cli_command() -> list[str]:
    """Return the argv prefix for the ``sluice`` CLI of this interpreter."""
    script = Path(sys.executable).parent / "sluice"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "sluice"]


def run_json(*args: str) -> Any:
    """Run one CLI command and parse its stdout as JSON."""
    cmd = cli_command() + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"]
        raise RecordsError(f"`{' '.join(args)}` exited {proc.returncode}: {lines[-1]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RecordsError(f"`{' '.join(args)}` did not print JSON: {exc}") from None


def as_list(payload: Any) -> list:
    """Return the list of runs from a bare list or a wrapping object."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in LIST_KEYS:
            if isinstance(payload.get(key), list):
                return payload[key]
    raise RecordsError(f"unexpected JSON shape: {type(payload).__name__}")


def run_id(run: Any) -> str:
    """Return the id of one flow run entry."""
    if isinstance(run, dict):
        for key in ("id", "flow_run_id", "run_id"):
            if run.get(key):
                return str(run[key])
    raise RecordsError("flow run entry without an id")


def task_run_count(obj: Any) -> tuple[int, Counter] | None:
    """Find a task-run count (and state tally) in an inspect/ls object."""
    if not isinstance(obj, dict):
        return None
    runs = obj.get("task_runs")
    if isinstance(runs, list):
        return len(runs), Counter(state_name(r) for r in runs)
    if isinstance(runs, int):
        return runs, Counter()
    for key in COUNT_KEYS:
        if isinstance(obj.get(key), int):
            return obj[key], Counter()
    for value in obj.values():  # one level down, e.g. {"flow_run": {...}}
        found = task_run_count(value) if isinstance(value, dict) else None
        if found is not None:
            return found
    return None


def state_name(run: Any) -> str:
    """Best-effort state label of a task run entry."""
    if not isinstance(run, dict):
        return "?"
    state = run.get("state") or run.get("state_type") or run.get("status")
    if isinstance(state, dict):
        state = state.get("type") or state.get("name")
    return str(state).upper() if state else "?"


def count_store() -> dict:
    """Sum the task runs over every flow run the store lists."""
    total, states, per_flow = 0, Counter(), {}
    for run in as_list(run_json("flow-run", "ls", "-o", "json")):
        found = task_run_count(run)
        if found is None:
            rid = run_id(run)
            found = task_run_count(run_json("flow-run", "inspect", rid, "-o", "json"))
        if found is None:
            raise RecordsError("no task-run list or count in `flow-run inspect` output")
        total += found[0]
        states.update(found[1])
        per_flow[run_id(run)] = found[0]
    return {
        "task_runs": total,
        "flow_runs": len(per_flow),
        "by_state": dict(states),
        "per_flow_run": per_flow,
    }


def main() -> None:
    """Print the store's task-run count, or null with the reason."""
    try:
        emit("records", **count_store())
    except (RecordsError, OSError, subprocess.SubprocessError) as exc:
        emit("records", task_runs=None, error=str(exc))


if __name__ == "__main__":
    main()
