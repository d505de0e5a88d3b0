"""The durability window: a SIGKILL at a random point re-runs only the tasks in flight.

A flow process is killed at a random moment (sequential and mapped flows, 20
kills in all). Each task appends ``start`` and ``end`` lines with the time to
a counter file (the ``end`` line just before it returns), so the test knows
what had finished when the signal went out. Afterwards the store must hold
the flow run (it is committed before the first task starts) and every task
that had returned a little while before the kill (the writer commits as soon
as it is idle, so a completion is durable about one transaction after it
happens; ``GRACE`` leaves room for a busy machine and is well under the old
0.5 s batching interval). Then the run is resumed, and the counter file must
show a second execution only for tasks that were in flight.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from sluice.backend.local import LocalBackend
from sluice.schemas import FlowRunFilter
from sluice.settings import Settings
from sluice.states import StateType

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: a completion this long before the kill must be in the store
GRACE = 0.2
KILLS_PER_FLOW = 10

FLOW = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from sluice import flow, task
    from sluice.task_runners import ThreadPoolTaskRunner

    # From the environment, not argv: a resume loads this file in another process.
    COUNTER = Path(os.environ["COUNTER_FILE"])

    def mark(what, i):
        with COUNTER.open("a") as fh:
            fh.write(f"{what} {i} {time.time()!r}\\n")

    @task
    def work(i: int) -> int:
        mark("start", i)
        time.sleep(0.03)
        mark("end", i)
        return i

    @flow(name="sequential")
    def sequential(n: int = 30) -> int:
        return sum(work(i) for i in range(n))

    @flow(name="mapped", task_runner=ThreadPoolTaskRunner(max_workers=4))
    def mapped(n: int = 60) -> int:
        return sum(f.result() for f in work.map(range(n)))

    if __name__ == "__main__":
        print({"sequential": sequential, "mapped": mapped}[sys.argv[1]]())
    """
)

#: flow name -> (tasks, how long a run takes about, which index names a task)
FLOWS = {"sequential": (30, 1.0, "call_index"), "mapped": (60, 0.5, "map_index")}


def _env(home: Path, counter: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_HOME=str(home),
        COUNTER_FILE=str(counter),
        SLUICE_LOGGING_TASK_STATE_LINES="false",
    )
    return env


def _marks(counter: Path) -> list[tuple[str, int, float]]:
    if not counter.exists():
        return []
    lines = [line.split() for line in counter.read_text().splitlines()]
    return [(what, int(i), float(at)) for what, i, at in lines]


def _kill_at_random(script: Path, name: str, home: Path, counter: Path, delay: float) -> float:
    """Start the flow, SIGKILL it ``delay`` s after its first task started; the
    time the signal went out (or +inf when the flow finished first)."""
    proc = subprocess.Popen(
        [sys.executable, str(script), name],
        env=_env(home, counter),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _marks(counter):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the flow never started a task"
            time.sleep(0.005)
        time.sleep(delay)  # the random kill point, not a synchronisation
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return killed_at if proc.returncode == -signal.SIGKILL else float("inf")


def _stored(home: Path, index: str) -> tuple[str | None, StateType | None, set[int]]:
    """The flow run's id and state (None if the store has none) and the tasks it
    holds Completed."""
    backend = LocalBackend(Settings(home=home))
    try:
        runs = backend.list_flow_runs(FlowRunFilter())
        if not runs:
            return None, None, set()
        assert len(runs) == 1
        completed = {
            getattr(t, index)
            for t in backend.read_task_runs(runs[0].id)
            if t.state_type is StateType.COMPLETED
        }
        # As the crash detector would (the process is gone): Crashed now, so it resumes.
        backend.mark_lapsed_runs_crashed(0.0)
        return runs[0].id, runs[0].state_type, completed
    finally:
        backend.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_sigkill_at_a_random_point_reruns_only_the_tasks_in_flight(
    tmp_path: Path, name: str
) -> None:
    script = tmp_path / "flows.py"
    script.write_text(FLOW)
    tasks, duration, index = FLOWS[name]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 0
    for attempt in range(KILLS_PER_FLOW * 2):
        if kills == KILLS_PER_FLOW:
            break
        home, counter = tmp_path / f"home-{attempt}", tmp_path / f"counter-{attempt}.txt"
        killed_at = _kill_at_random(script, name, home, counter, rng.uniform(0, duration))
        if killed_at == float("inf"):
            continue  # finished before the signal: no kill to check
        context = f"{name}, kill {kills + 1}, seed {seed}"
        marks = _marks(counter)
        ended = {i for what, i, at in marks if what == "end" and at < killed_at - GRACE}
        run_id, state, completed = _stored(home, index)
        assert run_id is not None, f"no flow run stored although a task ran ({context})"
        assert ended <= completed, f"returned but not stored: {ended - completed} ({context})"
        if state is StateType.COMPLETED:
            continue  # killed on its way out, after the run ended: nothing to resume
        kills += 1

        resumed = subprocess.run(
            [sys.executable, "-m", "sluice", "flow-run", "resume", run_id],
            env=_env(home, counter),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, f"{resumed.stderr} ({context})"
        starts = Counter(i for what, i, _ in _marks(counter) if what == "start")
        assert set(starts) == set(range(tasks)), context
        again = {i for i, count in starts.items() if count > 1}
        assert all(count <= 2 for count in starts.values()), (starts, context)
        assert not again & completed, f"stored as Completed and run again: {again} ({context})"
        assert not again & ended, f"finished before the kill and run again ({context})"
    assert kills == KILLS_PER_FLOW, f"only {kills} kills landed while {name} ran"
