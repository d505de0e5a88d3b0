"""``sluice flow-run resume``: loads the flow from its recorded entrypoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FLOW = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from sluice import flow, task

    LOG = Path(os.environ["RESUME_LOG"])

    @task
    def step(i: int) -> int:
        with LOG.open("a") as fh:
            fh.write(f"step-{i}\\n")
        if i == 2 and os.environ.get("BREAK") == "1":
            raise RuntimeError("broken step")
        return i

    @flow
    def three() -> int:
        return sum(step(i) for i in range(4))

    if __name__ == "__main__":
        three()
    """
)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=90)


def test_resume_from_the_cli_with_from(tmp_path: Path, sluice_home: Path) -> None:
    script = tmp_path / "three.py"
    script.write_text(FLOW)
    log = tmp_path / "log.txt"
    env = {**os.environ, "RESUME_LOG": str(log), "BREAK": "1"}
    first = _run([sys.executable, str(script)], env)
    assert first.returncode != 0
    listing = _run([sys.executable, "-m", "sluice", "flow-run", "ls", "-o", "json"], env)
    (run,) = json.loads(listing.stdout)
    assert run["state_type"] == "FAILED"

    env["BREAK"] = "0"
    log.write_text("")
    resumed = _run(
        [sys.executable, "-m", "sluice", "flow-run", "resume", run["id"], "--from", "step:1"], env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert log.read_text().splitlines() == ["step-1", "step-2", "step-3"]

    again = _run([sys.executable, "-m", "sluice", "flow-run", "resume", run["id"]], env)
    assert again.returncode == 1
    assert "only Failed, Crashed or Cancelled" in again.stderr
    assert "Traceback" not in again.stderr
