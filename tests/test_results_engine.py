"""Results are persisted by default and loaded back lazily."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sluice import flow, task
from sluice.states import StateType
from tests.helpers import only_flow_run, task_runs


def test_results_are_persisted_inline_by_default() -> None:
    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @flow
    def keeper() -> list[int]:
        return numbers(3)

    assert keeper() == [0, 1, 2]
    run = only_flow_run("keeper")
    stored = json.loads(run.result or "")
    assert stored["s"] == "json" and stored["v"] == [0, 1, 2] and len(stored["h"]) == 32
    (task_run,) = task_runs(run.id)
    assert json.loads(task_run.result or "")["v"] == [0, 1, 2]


def test_large_results_are_written_to_result_storage(sluice_home: Path) -> None:
    @task
    def big() -> str:
        return "x" * 100_000

    @flow
    def large() -> int:
        return len(big())

    assert large() == 100_000
    (task_run,) = task_runs(only_flow_run("large").id)
    path = Path(json.loads(task_run.result or "")["path"])
    assert path.is_file() and (sluice_home / "storage") in path.parents


def test_result_storage_and_key_template(tmp_path: Path) -> None:
    @task(result_storage=str(tmp_path / "results"), result_storage_key="{sample}/summary.json")
    def summarize(sample: str) -> dict[str, str]:
        return {"sample": sample, "blob": "y" * 70_000}

    @flow
    def keyed() -> None:
        summarize("S1")

    keyed()
    assert (tmp_path / "results" / "S1" / "summary.json").is_file()


def test_persist_result_false_stores_nothing() -> None:
    @task(persist_result=False)
    def secret() -> str:
        return "password"

    @flow
    def private() -> str:
        return secret()

    assert private() == "password"
    (task_run,) = task_runs(only_flow_run("private").id)
    assert task_run.result is None


def test_results_not_kept_in_memory_load_from_the_store() -> None:
    @task(cache_result_in_memory=False)
    def produce() -> dict[str, int]:
        return {"a": 1}

    @flow
    def lazy() -> dict[str, int]:
        state = produce(return_state=True)
        assert state._data is not None and repr(state._data) == "<not loaded>"
        return state.result()

    assert lazy() == {"a": 1}


def test_an_unserializable_result_fails_the_task_naming_it() -> None:
    @task
    def lock_maker() -> object:
        return threading.Lock()

    @flow
    def unstorable() -> None:
        lock_maker()

    with pytest.raises(Exception, match="lock_maker") as info:
        unstorable()
    assert "lock" in str(info.value).lower()
    (task_run,) = task_runs(only_flow_run("unstorable").id)
    assert task_run.state_type is StateType.FAILED
    assert "lock_maker" in (task_run.state_message or "")
