"""A task runner needs nothing of the engine beyond the call it is handed (RunnerCall)."""

from __future__ import annotations

import concurrent.futures as cf

import cloudpickle

from sluice import flow, task
from sluice.states import Failed, State, StateType
from sluice.task_runners.base import RunnerCall, TaskRunner
from tests.helpers import only_flow_run, task_runs


class InlineRunner(TaskRunner):
    """Runs each call when its upstream is done, in the thread that made it ready:
    written against RunnerCall alone, as a third-party runner would be."""

    def __init__(self) -> None:
        super().__init__()
        self.portables: list[object] = []

    def duplicate(self) -> InlineRunner:
        return self

    def start(self) -> None:
        pass

    def _shutdown_executor(self, cancel_pending: bool) -> None:
        pass

    def _execute(self, call: RunnerCall) -> cf.Future[State]:
        done: cf.Future[State] = cf.Future()
        self.portables.append(call.portable())
        done.set_result(call.run())
        return done


@task
def double(x: int) -> int:
    return 2 * x


@task
def fail() -> None:
    raise ValueError("no")


def test_a_runner_runs_calls_through_the_call_it_is_handed() -> None:
    runner = InlineRunner()

    @flow(task_runner=runner)
    def pipeline() -> int:
        first = double.submit(2)
        return double.submit(first).result()

    assert pipeline() == 8
    runs = task_runs(only_flow_run("pipeline").id)
    assert [(r.task_name, r.state_type) for r in runs] == [("double", StateType.COMPLETED)] * 2
    # The task as another process would run it: one per task and flow run, picklable.
    assert len({id(p) for p in runner.portables}) == 1
    assert cloudpickle.loads(cloudpickle.dumps(runner.portables[0])).task_name == "double"


def test_a_runner_decides_final_states_through_the_call() -> None:
    class RefusingRunner(InlineRunner):
        def _execute(self, call: RunnerCall) -> cf.Future[State]:
            done: cf.Future[State] = cf.Future()
            done.set_result(call.finish(Failed(message="refused by the runner")))
            return done

    @flow(task_runner=RefusingRunner())
    def refused() -> None:
        future = double.submit(1)
        future.wait()
        assert future.state.message == "refused by the runner"

    refused()
    (run,) = task_runs(only_flow_run("refused").id)
    assert (run.state_type, run.state_message) == (StateType.FAILED, "refused by the runner")


def test_an_upstream_that_failed_leaves_the_call_not_ready_through_the_call() -> None:
    @flow(task_runner=InlineRunner())
    def chained() -> str:
        upstream = fail.submit()
        upstream.wait()
        downstream = double.submit(upstream)
        downstream.wait()
        return downstream.state.name

    assert chained() == "NotReady"
    names = {r.task_name: r.state_name for r in task_runs(only_flow_run("chained").id)}
    assert names == {"fail": "Failed", "double": "NotReady"}
