"""Upstream failures: a task whose upstream did not complete is left NotReady.

Prefect's documented behaviour: a downstream of a failed upstream, whether
the upstream is passed as an argument or in ``wait_for``, does not run; it
stays Pending under the name ``NotReady``. ``allow_failure(upstream)`` lets
it run anyway. The flow's own state is still decided by what it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice import allow_failure, flow, task
from sluice.errors import UnfinishedRunError
from sluice.futures import SluiceFuture
from sluice.states import StateType
from tests.helpers import only_flow_run, task_runs


@task
def extract() -> list[int]:
    raise ConnectionError("source database unreachable")


@task
def clean_up(folder: str, note: str = "") -> str:
    marker = Path(folder, "cleaned")
    marker.write_text(marker.read_text() + "x" if marker.exists() else "x")
    return f"cleaned {note}".strip()


@task
def load(rows: Any) -> int:
    return len(rows)


def by_name(flow_name: str) -> dict[str, Any]:
    return {t.name: t for t in task_runs(only_flow_run(flow_name).id)}


def test_wait_for_a_failed_upstream_leaves_a_task_not_ready_unless_allowed(tmp_path: Path) -> None:
    @flow
    def pipeline(folder: str) -> str:
        rows = extract.submit()
        after = clean_up.submit(folder, wait_for=[rows])
        after.wait()
        assert after.state.is_pending() and after.state.name == "NotReady"
        with pytest.raises(UnfinishedRunError, match="NotReady"):
            after.result()
        return "finished"

    assert pipeline(str(tmp_path)) == "finished"
    assert not (tmp_path / "cleaned").exists()  # never called
    runs = by_name("pipeline")
    not_ready = runs["clean_up-0"]
    assert (not_ready.state_type, not_ready.state_name) == (StateType.PENDING, "NotReady")
    assert runs["extract-0"].id in (not_ready.state_message or "")
    assert not_ready.run_count == 0
    # Nothing failing was returned: the flow completes, as in Prefect.
    assert only_flow_run("pipeline").state_type is StateType.COMPLETED

    @flow
    def tolerant(folder: str) -> str:
        rows = extract.submit()
        return clean_up.submit(folder, "anyway", wait_for=[allow_failure(rows)]).result()

    assert tolerant(str(tmp_path)) == "cleaned anyway"
    assert (tmp_path / "cleaned").read_text() == "x"


def test_returning_a_not_ready_future_fails_the_flow(tmp_path: Path) -> None:
    @flow
    def strict(folder: str) -> SluiceFuture[str]:
        rows = extract.submit()
        return clean_up.submit(folder, wait_for=[rows])

    state = strict(str(tmp_path), return_state=True)
    assert (state.type, state.message) == (StateType.FAILED, "1/1 states are not final.")
    assert not (tmp_path / "cleaned").exists()


def test_a_failed_upstream_passed_as_an_argument_leaves_the_task_not_ready() -> None:
    @flow
    def etl() -> str:
        rows = extract.submit()
        loaded = load.submit(rows)
        loaded.wait()
        return loaded.state.name

    assert etl() == "NotReady"
    loaded = by_name("etl")["load-0"]
    assert (loaded.state_type, loaded.state_name) == (StateType.PENDING, "NotReady")


def test_mapped_tasks_waiting_for_a_failed_upstream_are_all_not_ready(tmp_path: Path) -> None:
    @flow
    def fan_out(folder: str) -> list[str]:
        rows = extract.submit()
        futures = clean_up.map(folder, ["a", "b", "c"], wait_for=[rows])
        futures.wait()
        return [f.state.name for f in futures]

    assert fan_out(str(tmp_path)) == ["NotReady"] * 3
    assert not (tmp_path / "cleaned").exists()
    names = {t.state_name for t in task_runs(only_flow_run("fan_out").id) if t.map_index >= 0}
    assert names == {"NotReady"}


def test_a_state_passed_on_is_an_upstream_too(tmp_path: Path) -> None:
    @flow
    def by_state(folder: str) -> tuple[str, str]:
        failed = extract(return_state=True)
        skipped = clean_up(folder, wait_for=[failed], return_state=True)
        given = clean_up(folder, "with the error", wait_for=[allow_failure(failed)])
        return skipped.name, given

    assert by_state(str(tmp_path)) == ("NotReady", "cleaned with the error")
    assert (tmp_path / "cleaned").read_text() == "x"
