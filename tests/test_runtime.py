"""``sluice.runtime``: the ``flow_run``, ``task_run`` and ``deployment`` modules, as Prefect
users write them, inside and outside runs; seed 002's lines about a flow run's state."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluice import flow, get_run_logger, task
from sluice.backend.factory import close_backends, get_backend
from sluice.runtime import deployment, flow_run, task_run
from sluice.states import State, StateType
from tests.server_process import ServerProcess

SEEN: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    SEEN.clear()
    yield
    close_backends()


# -- flow_run -------------------------------------------------------------------------------


@flow(version="7")
def child() -> dict[str, Any]:
    return {
        "parent": flow_run.parent_flow_run_id,
        "root": flow_run.root_flow_run_id,
        "id": flow_run.id,
    }


@flow(name="observed", tags=["nightly"])
def observed(n: int, label: str = "x") -> dict[str, Any]:
    return {
        "id": flow_run.id,
        "name": flow_run.name,
        "flow_name": flow_run.flow_name,
        "parameters": flow_run.parameters,
        "tags": flow_run.tags,
        "run_count": flow_run.run_count,
        "scheduled_start_time": flow_run.scheduled_start_time,
        "state": flow_run.state,
        "root": flow_run.root_flow_run_id,
        "child": child(),
        "task": inspect_task(n),
        "deployment": (deployment.id, deployment.name, deployment.parameters),
        "api_url": flow_run.api_url,
    }


@task(name="inspect-task", tags=["io"])
def inspect_task(n: int) -> dict[str, Any]:
    return {
        "id": task_run.id,
        "name": task_run.name,
        "task_name": task_run.task_name,
        "parameters": task_run.parameters,
        "tags": task_run.tags,
        "run_count": task_run.run_count,
        "flow_run_id": flow_run.id,
    }


def test_flow_run_and_task_run_inside_runs() -> None:
    before = dt.datetime.now(dt.timezone.utc)
    seen = observed(3)
    run = get_backend().read_flow_run(seen["id"])
    assert (seen["name"], seen["flow_name"]) == (run.name, "observed")
    assert seen["parameters"] == {"n": 3, "label": "x"}
    assert seen["tags"] == ["nightly"] and seen["run_count"] == 1
    assert before <= seen["scheduled_start_time"] <= dt.datetime.now(dt.timezone.utc)
    assert isinstance(seen["state"], State)
    assert (seen["state"].type, seen["state"].name) == (StateType.RUNNING, "Running")
    assert seen["root"] == seen["id"]
    assert seen["child"]["parent"] == seen["id"] and seen["child"]["root"] == seen["id"]
    assert seen["child"]["id"] != seen["id"]
    task_seen = seen["task"]
    (task_record,) = [
        t for t in get_backend().read_task_runs(seen["id"]) if t.id == task_seen["id"]
    ]
    assert task_seen["name"] == task_record.name and task_seen["task_name"] == "inspect-task"
    assert task_seen["parameters"] == {"n": 3}
    assert task_seen["tags"] == ["io"] and task_seen["run_count"] == 1
    assert task_seen["flow_run_id"] == seen["id"]
    assert seen["deployment"] == (None, None, {})  # not a deployment's run
    assert seen["api_url"] is None  # embedded: no server


ATTEMPTS: list[int] = []


@task(retries=2, retry_delay_seconds=0)
def flaky() -> int:
    ATTEMPTS.append(task_run.run_count)
    if len(ATTEMPTS) < 3:
        raise RuntimeError("not yet")
    return task_run.run_count


@flow
def retrying() -> int:
    return flaky()


def test_task_run_run_count_counts_attempts() -> None:
    ATTEMPTS.clear()
    assert retrying() == 3
    assert ATTEMPTS == [1, 2, 3]


def test_outside_any_run_values_are_empty() -> None:
    before = dt.datetime.now(dt.timezone.utc)
    assert (flow_run.id, flow_run.name, flow_run.flow_name, flow_run.state) == (None,) * 4
    assert (flow_run.tags, flow_run.parameters, flow_run.run_count) == ([], {}, 0)
    assert (flow_run.parent_flow_run_id, flow_run.root_flow_run_id, flow_run.ui_url) == (None,) * 3
    # As Prefect: outside a run the scheduled start time is now.
    assert before <= flow_run.scheduled_start_time <= dt.datetime.now(dt.timezone.utc)
    assert (task_run.id, task_run.name, task_run.task_name) == (None, None, None)
    assert (task_run.tags, task_run.parameters, task_run.run_count) == ([], {}, 0)
    assert (deployment.id, deployment.name, deployment.version) == (None, None, None)
    assert (deployment.flow_run_id, deployment.parameters) == (None, {})
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = flow_run.nope  # type: ignore[attr-defined]


def test_values_can_be_mocked_with_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE__RUNTIME__FLOW_RUN__NAME", "mocked-name")
    monkeypatch.setenv("SLUICE__RUNTIME__TASK_RUN__RUN_COUNT", "4")
    monkeypatch.setenv("SLUICE__RUNTIME__DEPLOYMENT__EXTRA", "anything")
    assert flow_run.name == "mocked-name"
    assert task_run.run_count == 4
    assert deployment.EXTRA == "anything"  # type: ignore[attr-defined]


def test_the_old_import_style_keeps_working() -> None:
    from sluice import runtime

    @flow
    def old_style() -> tuple[str | None, str | None]:
        return runtime.flow_run.id, runtime.flow_run.flow_name

    run_id, name = old_style()
    assert run_id is not None and name == "old_style"
    assert runtime.flow_run.id is None


# -- deployment -------------------------------------------------------------------------------


@flow
def deployed(who: str, times: int = 1) -> str:
    SEEN["deployment"] = {
        "id": deployment.id,
        "name": deployment.name,
        "version": deployment.version,
        "flow_run_id": deployment.flow_run_id,
        "parameters": deployment.parameters,
    }
    SEEN["flow_run"] = {"id": flow_run.id, "deployment_name": flow_run.deployment_name}
    return who * times


def _run_claimed_once() -> None:
    from sluice.engine.flow_engine import FlowRunDriver, run_flow_sync

    backend: Any = get_backend()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        claimed = backend.claim_flow_runs("default", worker_name="t", limit=1)
        if claimed:
            (record,) = claimed
            run_flow_sync(FlowRunDriver(deployed, (), dict(record.parameters), resume=record))
            return
        time.sleep(0.02)
    raise AssertionError("no run was claimed in 30 s")


def test_deployment_inside_a_deployment_run() -> None:
    from sluice.deployments import run_deployment

    dep = deployed.deploy("daily", parameters={"who": "a"}, version="2.1")
    run = run_deployment("deployed/daily", {"times": 2}, timeout=0)
    worker = threading.Thread(target=_run_claimed_once)
    worker.start()
    worker.join(60)
    assert SEEN["deployment"] == {
        "id": dep.id,
        "name": "daily",
        "version": "2.1",
        "flow_run_id": run.id,
        "parameters": {"who": "a", "times": 2},
    }
    assert SEEN["flow_run"] == {"id": run.id, "deployment_name": "deployed/daily"}


# -- client mode -------------------------------------------------------------------------------


@flow
def where_on_the_server() -> tuple[str | None, str | None, str | None]:
    return flow_run.api_url, flow_run.ui_url, inspect_urls()


@task
def inspect_urls() -> str | None:
    return task_run.api_url


@pytest.mark.integration
def test_api_and_ui_urls_in_client_mode(
    api_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_API_URL", api_server.url)
    api_url, ui_url, task_api_url = where_on_the_server()
    close_backends()
    assert api_url is not None and ui_url is not None and task_api_url is not None
    assert httpx.get(api_url).json()["flow_name"] == "where_on_the_server"
    assert httpx.get(task_api_url).json()["task_name"] == "inspect_urls"
    page = httpx.get(ui_url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


# -- seed 002 -----------------------------------------------------------------------------------


@flow
def seed_002() -> None:
    # Seed 002, "Flow State", with prefect replaced by sluice: these lines as written.
    from sluice import get_run_logger

    logger = get_run_logger()
    flow_run = logger.flow_run

    print(f"State: {flow_run.state}")
    print(f"Start time: {flow_run.start_time}")
    print(f"End time: {flow_run.end_time}")


def test_seed_002_flow_state_lines(capsys: pytest.CaptureFixture[str]) -> None:
    seed_002()
    out = capsys.readouterr().out
    assert "State: Running(type=RUNNING)" in out
    start = out.split("Start time: ", 1)[1].splitlines()[0]
    assert dt.datetime.fromisoformat(start).tzinfo is not None
    assert "End time: None" in out


def test_the_run_loggers_flow_run_state_is_a_state_with_name_and_type() -> None:
    @flow
    def states() -> tuple[State, State | None]:
        return get_run_logger().flow_run.state, flow_run.state  # type: ignore[union-attr]

    logged, runtime_state = states()
    assert (logged.name, logged.type) == ("Running", StateType.RUNNING)
    assert runtime_state is not None and runtime_state.type is StateType.RUNNING
