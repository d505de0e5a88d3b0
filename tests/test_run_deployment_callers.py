"""``run_deployment`` from every kind of caller: sync code, ``await`` in async code,
asgiref's ``async_to_sync``, sync and async flows; naive ``scheduled_time``.

Runs are executed by a claim-and-run loop in a thread (as a worker's subprocess
would run them); the real worker is in tests/test_workers.py and the Django
receiver of seed 001 in tests/test_django_example.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import itertools
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from sluice import flow
from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import DeploymentRun, run_deployment
from sluice.errors import NotAwaitedError
from sluice.schemas import FlowRunFilter, FlowRunRecord
from sluice.states import StateType


@flow
def double(n: int) -> int:
    return 2 * n


@pytest.fixture(autouse=True)
def deployed() -> Iterator[None]:
    double.deploy("dev")
    yield
    close_backends()


class Worker:
    """Claims runs of the default pool and runs ``double`` for them, in a thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Worker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        from sluice.engine.flow_engine import FlowRunDriver, run_flow_sync

        backend: Any = get_backend()
        while not self._stop.is_set():
            for record in backend.claim_flow_runs("default", worker_name="t", limit=4):
                run_flow_sync(FlowRunDriver(double, (), dict(record.parameters), resume=record))
            self._stop.wait(0.02)


def runs() -> list[FlowRunRecord]:
    return list(get_backend().list_flow_runs(FlowRunFilter(flow_name="double")))


# -- sync code ----------------------------------------------------------------------------


def test_plain_call_from_sync_code_returns_the_run() -> None:
    with Worker():
        run = run_deployment("double/dev", {"n": 4}, poll_interval=0.02)
    assert isinstance(run, DeploymentRun)
    assert run.state.type is StateType.COMPLETED
    assert run.state.result() == 8


# -- async code ---------------------------------------------------------------------------


async def _ticks_while(work: Any) -> tuple[Any, list[float]]:
    """Run ``work`` while another task ticks every 10 ms; its result and the tick times."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        return await work, ticks
    finally:
        done.set()
        await task


def test_awaited_in_async_code_waits_without_blocking_the_loop() -> None:
    async def main() -> tuple[Any, list[float]]:
        # No worker: the run stays Scheduled and the call waits out its timeout.
        return await _ticks_while(run_deployment("double/dev", {"n": 1}, timeout=1.0))

    started = time.monotonic()
    run, ticks = asyncio.run(main())
    assert time.monotonic() - started >= 1.0
    assert run.state.type is StateType.SCHEDULED
    assert [r.id for r in runs()] == [run.id]
    # The loop kept running the ticker all along: no gap near the second waited.
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 20 and max(gaps) < 0.5, (len(ticks), max(gaps))


def test_awaited_in_async_code_returns_the_finished_run() -> None:
    async def main() -> DeploymentRun:
        return await run_deployment("double/dev", {"n": 5}, poll_interval=0.02)

    with Worker():
        run = asyncio.run(main())
    assert run.state.type is StateType.COMPLETED and run.state.result() == 10


def test_a_call_in_async_code_does_nothing_until_awaited() -> None:
    async def main() -> None:
        pending = run_deployment("double/dev", {"n": 1}, timeout=0)
        with pytest.raises(NotAwaitedError, match="await"):
            _ = pending.id
        assert runs() == []
        assert (await pending) is pending
        assert pending.state.type is StateType.SCHEDULED

    asyncio.run(main())
    assert len(runs()) == 1


def test_a_call_never_awaited_warns_like_a_coroutine() -> None:
    async def main() -> None:
        run_deployment("double/dev", {"n": 1}, timeout=0)

    with pytest.warns(RuntimeWarning, match=r"run_deployment\('double/dev'\).*never awaited"):
        asyncio.run(main())
        gc.collect()
    assert runs() == []


def test_async_to_sync_as_a_django_receiver_calls_it() -> None:
    # Seed 001: async_to_sync(run_deployment)(name, timeout=0, parameters=...).
    # filterwarnings = error: asgiref's "non-async-marked callable" warning fails this.
    flowrun = async_to_sync(run_deployment)("double/dev", timeout=0, parameters={"n": 3})
    assert isinstance(flowrun, DeploymentRun)
    (stored,) = runs()
    assert str(flowrun.id) == stored.id and stored.parameters == {"n": 3}


def test_async_to_sync_waits_for_the_run_when_asked() -> None:
    with Worker():
        flowrun = async_to_sync(run_deployment)("double/dev", parameters={"n": 6}, timeout=60)
    assert flowrun.state.result() == 12


# -- inside flows -------------------------------------------------------------------------


@flow
async def async_parent() -> list[str]:
    first = await run_deployment("double/dev", {"n": 1}, timeout=0)
    second, third = await asyncio.gather(
        run_deployment("double/dev", {"n": 2}, timeout=0),
        run_deployment("double/dev", {"n": 3}, timeout=0),
    )
    return [first.id, second.id, third.id]


def test_awaited_inside_an_async_flow_is_a_subflow_per_call_position() -> None:
    ids = asyncio.run(async_parent())
    backend: Any = get_backend()
    children = [backend.read_flow_run(i) for i in ids]
    parent_id = children[0].parent_flow_run_id
    assert parent_id is not None
    assert [c.parameters["n"] for c in children] == [1, 2, 3]
    assert [c.idempotency_key for c in children] == [
        f"subflow:{parent_id}:run_deployment/double/dev:{i}" for i in range(3)
    ]
    placeholders = {t.id for t in backend.read_task_runs(parent_id)}
    assert {c.parent_task_run_id for c in children} <= placeholders


@flow
def sync_parent() -> str:
    return run_deployment("double/dev", {"n": 7}, timeout=0).id


def test_a_sync_flow_called_from_async_code_calls_it_plainly() -> None:
    async def main() -> str:
        return sync_parent()

    child_id = asyncio.run(main())
    child = get_backend().read_flow_run(child_id)
    assert child.parent_flow_run_id is not None and child.parameters == {"n": 7}


# -- scheduled_time ------------------------------------------------------------------------


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available on this platform")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_scheduled_time_is_local_time(tokyo_local_time: None) -> None:
    assert os.environ["TZ"] == "Asia/Tokyo"
    run = run_deployment(
        "double/dev", {"n": 1}, timeout=0, scheduled_time=dt.datetime(2030, 1, 2, 9)
    )
    stored = get_backend().read_flow_run(run.id)
    assert stored.scheduled_start_time == dt.datetime(2030, 1, 2, 0, tzinfo=dt.timezone.utc)


def test_job_variables_are_stored_and_checked_before_anything_is_created() -> None:
    run = run_deployment(
        "double/dev", {"n": 1}, timeout=0, job_variables={"env": {"STAGE": "qa"}, "image": "x"}
    )
    assert get_backend().read_flow_run(run.id).job_variables == {
        "env": {"STAGE": "qa"},
        "image": "x",
    }
    with pytest.raises(ValueError, match=r"job_variables\.env must be a mapping"):
        run_deployment("double/dev", {"n": 1}, timeout=0, job_variables={"env": "STAGE=qa"})
    assert len(runs()) == 1
