"""Caching as Prefect's docs show it: the DEFAULT policy, and Sluice's deliberate default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.porting import results, run_script, write_ported

pytestmark = pytest.mark.integration

ADD_ONE = """
    import json

    from prefect import flow, task
    from prefect.cache_policies import DEFAULT

    calls = []


    @task(cache_policy=DEFAULT)
    def add_one(x: int) -> int:
        calls.append(x)
        return x + 1


    @task(persist_result=True)
    def add_two(x: int) -> int:
        calls.append(x)
        return x + 2


    @flow
    def my_flow(use_default: bool) -> list:
        step = add_one if use_default else add_two
        states = [step(x, return_state=True) for x in (1, 1, 2)]
        return [state.name for state in states]


    if __name__ == "__main__":
        for use_default in (True, False):
            calls.clear()
            names = my_flow(use_default)
            print("RESULT " + json.dumps({"states": names, "calls": list(calls)}))
"""


def test_default_policy_caches_the_repeated_call_and_plain_tasks_run_each_time(
    tmp_path: Path,
) -> None:
    done = run_script(write_ported(tmp_path, "caching.py", ADD_ONE))
    assert done.returncode == 0, done.stdout + done.stderr
    with_default, plain = results(done)
    # Prefect's documented outcome for its DEFAULT policy:
    assert with_default == {"states": ["Completed", "Cached", "Completed"], "calls": [1, 2]}
    # Prefect would cache here too (DEFAULT is its default); Sluice caches nothing
    # unless asked (docs/from-prefect.md, "Caching: nothing unless asked").
    assert plain == {"states": ["Completed", "Completed", "Completed"], "calls": [1, 1, 2]}
