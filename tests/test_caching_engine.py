"""Caching across runs: opt-in, Cached state, never calling the function on a hit."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sluice import flow, task
from sluice.cache_policies import INPUTS, TASK_SOURCE
from sluice.states import StateType
from sluice.tasks import task_input_hash
from tests.helpers import flow_runs, task_runs


def _calls() -> list[int]:
    return []


def test_no_caching_by_default() -> None:
    calls = _calls()

    @task
    def plain(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def twice() -> None:
        plain(1)
        plain(1)

    twice()
    twice()
    assert calls == [1, 1, 1, 1]


def test_cache_hit_across_flow_runs_is_cached_and_not_called() -> None:
    calls = _calls()

    @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=dt.timedelta(hours=1))
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 10

    @flow
    def first() -> int:
        return expensive(4)

    @flow
    def second() -> int:
        return expensive(4) + expensive(5)

    assert first() == 40
    assert second() == 90
    assert calls == [4, 5]
    run = next(r for r in flow_runs("second"))
    names = sorted(t.state_name for t in task_runs(run.id))
    assert names == ["Cached", "Completed"]


def test_expired_entries_and_refresh_run_again() -> None:
    calls = _calls()

    @task(cache_key_fn=task_input_hash, cache_expiration=dt.timedelta(0))
    def expires_at_once(x: int) -> int:
        calls.append(x)
        return x

    @task(cache_key_fn=task_input_hash, refresh_cache=True)
    def always_refreshed(x: int) -> int:
        calls.append(-x)
        return x

    @flow
    def refreshing() -> None:
        expires_at_once(1)
        expires_at_once(1)
        always_refreshed(2)
        always_refreshed(2)

    refreshing()
    assert calls == [1, 1, -2, -2]


def test_unhashable_input_fails_clearly_and_never_runs() -> None:
    calls = _calls()

    @task(cache_policy=INPUTS)
    def takes_lock(handle: object) -> None:
        calls.append(1)

    @flow
    def bad_cache() -> None:
        takes_lock(threading.Lock())

    with pytest.raises(Exception, match="argument 'handle' of task 'takes_lock'"):
        bad_cache()
    assert calls == []


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sluice import flow, task
    from sluice.tasks import task_input_hash

    LOG = Path(sys.argv[1])

    @task(cache_key_fn=task_input_hash)
    def costly(x: int) -> int:
        with LOG.open("a") as fh:
            fh.write(f"ran {x}\\n")
        return x + 100

    @flow
    def cached_flow(x: int) -> int:
        return costly(x)

    if __name__ == "__main__":
        print(cached_flow(7))
    """
)


@pytest.mark.integration
def test_cache_hits_across_separate_processes(tmp_path: Path) -> None:
    script = tmp_path / "cached.py"
    script.write_text(SCRIPT)
    log = tmp_path / "calls.txt"
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, str(script), str(log)],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "107"
    assert log.read_text().splitlines() == ["ran 7"]
    states = sorted(
        t.state_type.value + "/" + t.state_name
        for r in flow_runs("cached_flow")
        for t in task_runs(r.id)
    )
    assert states == ["COMPLETED/Cached", "COMPLETED/Completed"]
    assert all(r.state_type is StateType.COMPLETED for r in flow_runs("cached_flow"))
