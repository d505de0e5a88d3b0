"""The Python API: Flow.deploy, run_deployment, backfill, sluice.runtime.flow_run.

Runs are executed by a small claim-and-run loop in a thread (the real worker
process is built elsewhere): it claims through the backend and runs the flow
with the engine, as a worker's subprocess would.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import flow, runtime, task
from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import backfill, run_deployment
from sluice.errors import NotFoundError, ParameterValidationError, ScheduleError
from sluice.scheduling.schedules import CronSchedule, IntervalSchedule
from sluice.schemas import BACKFILL_TAG, FlowRunRecord
from sluice.states import StateType, utcnow

UTC = dt.timezone.utc
DAILY = CronSchedule("0 0 * * *")
SEEN: dict[str, Any] = {}


@flow
def greet(who: str, times: int = 1) -> str:
    SEEN[runtime.flow_run.id or ""] = {
        "scheduled": runtime.flow_run.scheduled_start_time,
        "deployment": runtime.flow_run.deployment_name,
        "deployment_id": runtime.flow_run.deployment_id,
        "parameters": runtime.flow_run.parameters,
        "flow_name": runtime.flow_run.flow_name,
    }
    return who * times


@flow
def caller(n: int) -> list[str]:
    first = run_deployment("greet/hello", {"who": "a"}, timeout=0)
    second = run_deployment("greet/hello", {"who": "b", "times": n}, timeout=0)
    return [first.id, second.id]


@pytest.fixture(autouse=True)
def _own_backend() -> Iterator[None]:
    yield
    close_backends()


def _run_claimed(record: FlowRunRecord) -> None:
    """Run a claimed run of ``greet`` in this process, as a worker's subprocess would."""
    from sluice.engine.flow_engine import FlowRunDriver, run_flow_sync

    run_flow_sync(FlowRunDriver(greet, (), dict(record.parameters), resume=record))


class Worker:
    """Claims runs of a pool and runs them, in a thread, until stopped."""

    def __init__(self, pool: str = "default") -> None:
        self.pool = pool
        self.ran: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Worker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        backend: Any = get_backend()
        while not self._stop.is_set():
            for record in backend.claim_flow_runs(self.pool, worker_name="t", limit=4):
                _run_claimed(record)
                self.ran.append(record.id)
            time.sleep(0.05)


# -- Flow.deploy ---------------------------------------------------------------------------


def test_deploy_derives_entrypoint_schema_and_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent.parent)
    dep = greet.deploy(
        "hello", cron="0 6 * * *", timezone="Europe/London", tags=["t"], parameters={"who": "w"}
    )
    assert dep.full_name == "greet/hello"
    assert dep.entrypoint == "tests/test_deployments_api.py:greet"
    assert dep.working_dir == os.getcwd()
    assert dep.parameter_schema is not None
    assert dep.parameter_schema["required"] == ["who"]
    assert dep.schedules == [
        {"kind": "cron", "cron": "0 6 * * *", "timezone": "Europe/London", "day_or": True}
    ]
    again = greet.deploy("hello", interval=dt.timedelta(hours=1), parameters={"who": "x"})
    assert again.id == dep.id
    assert again.schedules[0]["kind"] == "interval"  # replaced, not merged
    assert len(again.schedules) == 1


def test_deploy_refuses_bad_input() -> None:
    with pytest.raises(ScheduleError, match="minute"):
        greet.deploy("bad", cron="61 * * * *")
    with pytest.raises(ScheduleError, match="exactly one"):
        greet.deploy("bad", cron="0 6 * * *", rrule="FREQ=DAILY")
    with pytest.raises(ParameterValidationError, match="times: expected integer"):
        greet.deploy("bad", parameters={"times": "two"})
    with pytest.raises(ParameterValidationError, match="who: missing required"):
        greet.deploy("bad", cron="0 6 * * *")  # scheduled runs would lack "who"
    backend: Any = get_backend()
    assert backend.list_deployments() == []


# -- run_deployment --------------------------------------------------------------------------


def test_run_deployment_timeout_zero_returns_the_scheduled_run() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    started = time.monotonic()
    run = run_deployment("greet/hello", parameters={"times": 2}, timeout=0)
    assert time.monotonic() - started < 2
    assert run.state.type is StateType.SCHEDULED
    stored = get_backend().read_flow_run(run.id)
    assert stored.parameters == {"who": "x", "times": 2}
    assert stored.deployment_id == run.deployment_id


def test_run_deployment_idempotency_key() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    first = run_deployment("greet/hello", timeout=0, idempotency_key="order-7")
    second = run_deployment("greet/hello", timeout=0, idempotency_key="order-7")
    assert first.id == second.id
    backend: Any = get_backend()
    assert len(backend.list_deployment_runs("greet/hello")) == 1


def test_run_deployment_bad_parameters_create_nothing() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    with pytest.raises(ParameterValidationError, match="times: expected integer"):
        run_deployment("greet/hello", {"times": "many"}, timeout=0)
    with pytest.raises(ParameterValidationError, match="colour: unknown parameter"):
        run_deployment("greet/hello", {"colour": "red"}, timeout=0)
    with pytest.raises(NotFoundError, match="deployment 'greet/nope'"):
        run_deployment("greet/nope", timeout=0)
    backend: Any = get_backend()
    assert backend.list_deployment_runs("greet/hello") == []


def test_run_deployment_waits_for_the_final_state() -> None:
    greet.deploy("hello", parameters={"who": "ab"})
    with Worker():
        run = run_deployment("greet/hello", {"times": 2}, timeout=None, poll_interval=0.05)
    assert run.state.type is StateType.COMPLETED
    assert run.state.result() == "abab"


def test_run_deployment_timeout_returns_the_run_as_it_is() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    started = time.monotonic()
    run = run_deployment("greet/hello", timeout=0.3, poll_interval=0.05)
    assert 0.25 <= time.monotonic() - started < 5
    assert run.state.type is StateType.SCHEDULED


def test_run_deployment_inside_a_flow_is_a_subflow_once_per_call_position() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    ids = caller(3)
    backend: Any = get_backend()
    runs = [backend.read_flow_run(i) for i in ids]
    parent_id = runs[0].parent_flow_run_id
    assert parent_id is not None and runs[1].parent_flow_run_id == parent_id
    placeholders = {t.id: t for t in backend.read_task_runs(parent_id)}
    assert {r.parent_task_run_id for r in runs} <= set(placeholders)
    assert [placeholders[r.parent_task_run_id].task_key for r in runs] == [
        "run_deployment/greet/hello:0",
        "run_deployment/greet/hello:1",
    ]
    # A resumed parent would call again at the same positions: same runs back.
    assert {r.idempotency_key for r in runs} == {
        f"subflow:{parent_id}:run_deployment/greet/hello:0",
        f"subflow:{parent_id}:run_deployment/greet/hello:1",
    }


# -- runtime ---------------------------------------------------------------------------------


def test_runtime_in_a_deployment_run_knows_its_tick_and_deployment() -> None:
    dep = greet.deploy("hello", parameters={"who": "x"})
    tick = dt.datetime(2024, 1, 2, 6, tzinfo=UTC)
    backend: Any = get_backend()
    backend.create_scheduled_runs(dep.id, times=[tick])
    with Worker() as worker:
        deadline = time.monotonic() + 30
        while not worker.ran and time.monotonic() < deadline:
            time.sleep(0.05)
    seen = SEEN[worker.ran[0]]
    assert seen["scheduled"] == tick
    assert seen["deployment"] == "greet/hello"
    assert seen["deployment_id"] == dep.id
    assert seen["parameters"] == {"who": "x", "times": 1}
    assert seen["flow_name"] == "greet"


@task
def _where() -> tuple[str | None, str | None]:
    return runtime.flow_run.id, runtime.flow_run.flow_name


@flow
def _asks_in_tasks() -> tuple[Any, Any, str | None]:
    return _where(), _where.submit().result(), runtime.flow_run.id


def test_runtime_inside_tasks_sees_the_flow_run() -> None:
    direct, submitted, own = _asks_in_tasks()
    assert direct == submitted == (own, "_asks_in_tasks")


def test_runtime_outside_deployments_and_outside_runs() -> None:
    assert runtime.flow_run.id is None
    before = utcnow()
    assert runtime.flow_run.scheduled_start_time >= before  # outside a run: now, as in Prefect
    greet("z")
    (seen,) = [v for v in SEEN.values() if v["deployment_id"] is None][-1:]
    assert seen["deployment"] is None
    assert seen["scheduled"] >= before  # a plain run: its start


# -- backfill --------------------------------------------------------------------------------


def test_backfill_creates_one_run_per_tick_idempotently() -> None:
    greet.deploy("hello", cron="0 6 * * *", parameters={"who": "x"})
    start, end = dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 31, 6, tzinfo=UTC)
    report = backfill("greet/hello", start, end)
    assert len(report.ticks) == 31 and report.created == 31  # the end is included
    assert backfill("greet/hello", start, end).created == 0
    backend: Any = get_backend()
    runs = backend.list_deployment_runs("greet/hello", limit=0)
    assert [r.scheduled_start_time for r in runs] == report.ticks
    assert all(BACKFILL_TAG in r.tags for r in runs)
    hourly = backfill(
        "greet/hello", start, start + dt.timedelta(hours=6),
        schedule=IntervalSchedule(dt.timedelta(hours=1), anchor_date=start),
    )  # fmt: skip
    assert (len(hourly.ticks), hourly.created) == (7, 6)  # 06:00 had a run already


def test_backfill_with_max_active_paces_runs_and_waits() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    progress: list[tuple[int, int]] = []
    with Worker() as worker:
        report = backfill(
            "greet/hello", start, start + dt.timedelta(days=5),
            schedule=CronSchedule("0 0 * * *"), max_active=2, wait=True,
            poll_interval=0.05, on_progress=lambda done, total: progress.append((done, total)),
        )  # fmt: skip
    assert len(report.runs) == 6
    assert {r.state_type for r in report.runs} == {StateType.COMPLETED}
    assert progress[-1] == (6, 6)
    assert len(worker.ran) == 6


def test_backfill_bad_input() -> None:
    greet.deploy("hello", parameters={"who": "x"})
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="has no schedule"):
        backfill("greet/hello", start, start)
    with pytest.raises(ValueError, match="before its start"):
        backfill("greet/hello", start, start - dt.timedelta(days=1), schedule=DAILY)
    with pytest.raises(ValueError, match="timezone"):
        backfill("greet/hello", start.replace(tzinfo=None), start, schedule=DAILY)
