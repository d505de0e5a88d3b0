"""Real crashes: SIGKILL and SIGTERM a flow process, detect it, resume it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from sluice.states import StateType

pytestmark = pytest.mark.integration

FLOW = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from sluice import flow, task

    # From the environment, not argv: a resume loads this file in another process.
    OUT = Path(os.environ["FIFTY_OUT"])

    @task
    def work(i: int) -> int:
        time.sleep(0.05)
        with OUT.open("a") as fh:
            fh.write(f"task-{i}\\n")
        return i

    @flow(name="fifty")
    def fifty(n: int = 50) -> int:
        return sum(work(i) for i in range(n))

    if __name__ == "__main__":
        print(fifty())
    """
)


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FIFTY_OUT": str(home.parent / "out.txt"),
        "SLUICE_HOME": str(home),
        "SLUICE_HEARTBEAT_INTERVAL": "0.2",
        "SLUICE_HEARTBEAT_TIMEOUT": "1.5",
        "SLUICE_STORE_FLUSH_INTERVAL": "0.1",
        "SLUICE_LOGGING_TASK_STATE_LINES": "false",
    }


def _sluice(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=90,
    )


def _start(script: Path, out: Path, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(out)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_lines(out: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the flow never got that far")


def _only_run(home: Path) -> dict[str, object]:
    listing = _sluice(home, "flow-run", "ls", "-o", "json")
    assert listing.returncode == 0, listing.stderr
    runs = json.loads(listing.stdout)
    assert len(runs) == 1
    return runs[0]  # type: ignore[no-any-return]


def test_sigkilled_flow_is_detected_as_crashed_and_resumes_without_repeats(
    tmp_path: Path,
) -> None:
    home, script, out = tmp_path / "home", tmp_path / "fifty.py", tmp_path / "out.txt"
    script.write_text(FLOW)
    assert out == home.parent / "out.txt"
    proc = _start(script, out, home)
    _wait_for_lines(out, 20, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)

    time.sleep(2.0)  # let the heartbeat lapse (timeout 1.5 s)
    run = _only_run(home)
    assert run["state_type"] == StateType.CRASHED.value
    flushed = _completed_task_names(home, str(run["id"]))
    assert len(flushed) >= 10

    resumed = _sluice(home, "flow-run", "resume", str(run["id"])[:12])
    assert resumed.returncode == 0, resumed.stderr
    assert "Completed" in resumed.stdout
    counts = Counter(out.read_text().splitlines())
    assert set(counts) == {f"task-{i}" for i in range(50)}
    for name in flushed:
        assert counts[name] == 1, name
    final = _only_run(home)
    assert final["state_type"] == StateType.COMPLETED.value
    assert final["id"] == run["id"]
    assert final["run_count"] == 2


def _completed_task_names(home: Path, run_id: str) -> set[str]:
    shown = _sluice(home, "flow-run", "inspect", run_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    return {
        f"task-{int(t['call_index'])}"
        for t in data["task_runs"]
        if t["state_type"] == StateType.COMPLETED.value
    }


def test_sigterm_marks_the_run_crashed_with_a_message(tmp_path: Path) -> None:
    home, script, out = tmp_path / "home", tmp_path / "fifty.py", tmp_path / "out.txt"
    script.write_text(FLOW)
    proc = _start(script, out, home)
    _wait_for_lines(out, 5, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    run = _only_run(home)
    assert run["state_type"] == StateType.CRASHED.value
    assert "SIGTERM" in str(run["state_message"])
