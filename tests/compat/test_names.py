"""Prefect's module paths and names used together in one script, as its docs use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.porting import results, run_script, write_ported

pytestmark = pytest.mark.integration

SHOWCASE = """
    import json

    from prefect import flow, runtime, task
    from prefect.cache_policies import CacheKeyFnPolicy
    from prefect.client.schemas.objects import FlowRun, TaskRun
    from prefect.futures import PrefectFuture
    from prefect.states import State
    from prefect.tasks import exponential_backoff
    from prefect.testing.utilities import prefect_test_harness
    from prefect.utilities.annotations import opaque, quote

    attempts = []
    seen = []


    def record_task(task, task_run: TaskRun, state: State) -> None:
        seen.append(f"task {isinstance(task_run, TaskRun)} {state.name}")


    def record_flow(flow, flow_run: FlowRun, state: State) -> None:
        seen.append(f"flow {isinstance(flow_run, FlowRun)} {state.name}")


    @task(
        retries=2,
        retry_delay_seconds=exponential_backoff(backoff_factor=0.01),
        retry_jitter_factor=0.5,
        on_completion=[record_task],
    )
    def call_flaky_api() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("503 Service Unavailable")
        return "200 OK"


    @task
    def total(numbers: list) -> int:
        return sum(numbers)


    @task
    def double(n: int) -> int:
        return 2 * n


    @task
    def is_future(value) -> bool:
        return isinstance(value, PrefectFuture)


    @task(cache_policy=CacheKeyFnPolicy(cache_key_fn=lambda context, parameters: "always-the-same"))
    def first_value_wins(n: int) -> int:
        return n


    def name_the_run() -> str:
        parameters = runtime.flow_run.parameters
        return f"{runtime.flow_run.flow_name}-for-{parameters['label']}"


    @flow(flow_run_name=name_the_run, on_completion=[record_flow])
    def showcase(label: str) -> dict:
        future = total.submit([1, 2, 3])
        state: State[int] = total([4, 5], return_state=True)
        return {
            "api": call_flaky_api(),
            "attempts": len(attempts),
            "state": state.result(),
            "opaque": double(opaque(future)),
            "quote": is_future(quote(future)),
            "cached": [first_value_wins(1), first_value_wins(2)],
            "run_name": runtime.flow_run.name,
        }


    if __name__ == "__main__":
        with prefect_test_harness():
            outcome = showcase("demo")
        print("RESULT " + json.dumps({**outcome, "seen": seen}))
"""


def test_prefect_names_in_one_script_give_prefects_outcome(tmp_path: Path) -> None:
    done = run_script(write_ported(tmp_path, "showcase.py", SHOWCASE))
    assert done.returncode == 0, done.stdout + done.stderr
    (outcome,) = results(done)
    assert outcome == {
        "api": "200 OK",
        "attempts": 3,  # two retries, with exponential backoff and jitter
        "state": 9,
        "opaque": 12,  # the wrapped future resolved
        "quote": True,  # the quoted future passed as it is
        "cached": [1, 1],  # one cache key for every call
        "run_name": "showcase-for-demo",
        "seen": ["task True Completed", "flow True Completed"],
    }
