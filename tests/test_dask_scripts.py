"""The Dask runner from the outside: a script's ``__main__`` flow, and lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("distributed")

SCRIPT = textwrap.dedent(
    """
    import os

    from sluice import flow, get_run_logger, task
    from sluice.task_runners import DaskTaskRunner


    @task
    def shout(word: str) -> str:
        get_run_logger().info("shouting %s", word)
        return word.upper() + "!"


    @flow(task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "dashboard_address": ":0"}
    ))
    def shouts(words: list) -> list:
        return [f.result() for f in shout.map(words)]


    # The workers import this script again: without the guard each would run the flow.
    if __name__ == "__main__":
        print("RESULT", shouts(["a", "b", "c"]), os.getpid())
    """
)


def test_a_flow_defined_in_main_runs_on_a_local_cluster(tmp_path: Path, sluice_home: Path) -> None:
    script = tmp_path / "shouting.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "SLUICE_HOME": str(sluice_home)}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    assert "RESULT ['A!', 'B!', 'C!']" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "sluice", "flow-run", "ls", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    runs = json.loads(listed.stdout)
    assert [r["state_name"] for r in runs] == ["Completed"]


def test_importing_sluice_task_runners_does_not_import_dask() -> None:
    code = (
        "import sys, sluice, sluice.task_runners\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
        "from sluice.task_runners import DaskTaskRunner\n"
        "assert 'distributed' not in sys.modules\n"
        "DaskTaskRunner(cluster_kwargs={'n_workers': 1})\n"
        "print('lazy')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lazy"


def test_a_script_without_the_main_guard_gets_a_hint(tmp_path: Path, sluice_home: Path) -> None:
    unguarded = SCRIPT.replace('if __name__ == "__main__":\n    ', "")
    assert "__main__" not in unguarded.split("# The workers")[1]
    script = tmp_path / "unguarded.py"
    script.write_text(unguarded)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "SLUICE_HOME": str(sluice_home)},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "LocalCluster did not start" in last
    assert 'if __name__ == "__main__":' in last
