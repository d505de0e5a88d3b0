"""A small, fixed set of flows, runs, task runs and logs for the CLI tests (in the past,
so the running run has a positive elapsed time).

Written through the real embedded backend (the same path the engine uses), so
the CLI tests read real rows from a real SQLite file.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from sluice.backend.protocol import Backend
from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.states import (
    AwaitingRetry,
    Completed,
    Failed,
    Pending,
    Retrying,
    Running,
    State,
    StateType,
    utcnow,
)

T0 = _dt.datetime(2025, 11, 22, 5, 3, 12, tzinfo=_dt.timezone.utc)
#: Two ids share the prefix "aaaa" so a short prefix is ambiguous.
RUN_OK = "aaaa1111-0000-4000-8000-000000000001"
RUN_FAILED = "aaaa2222-0000-4000-8000-000000000002"
RUN_RUNNING = "bbbb3333-0000-4000-8000-000000000003"
TASK_EXTRACT = "cccc0001-0000-4000-8000-000000000001"
TASK_TRANSFORM = "cccc0002-0000-4000-8000-000000000002"
TASK_LOAD_0 = "cccc0003-0000-4000-8000-000000000003"
TASK_LOAD_1 = "cccc0004-0000-4000-8000-000000000004"
TASK_OTHER = "dddd0001-0000-4000-8000-000000000001"


def at(seconds: float) -> _dt.datetime:
    return T0 + _dt.timedelta(seconds=seconds)


def advance(backend: Backend, run: FlowRunRecord | TaskRunRecord, state: State) -> None:
    """Move a run into ``state`` and record it, as the engine does."""
    if state.type is StateType.RUNNING:
        run.run_count += 1
    run.apply(state)
    kind = "flow" if isinstance(run, FlowRunRecord) else "task"
    record = StateRecord.from_state(run.id, kind, state)
    if isinstance(run, FlowRunRecord):
        backend.write_flow_run(run, record)
    else:
        backend.write_task_run(run, record)


@dataclass
class Dataset:
    ok: FlowRunRecord
    failed: FlowRunRecord
    running: FlowRunRecord


def build(backend: Backend) -> Dataset:
    """Three runs of two flows; the completed one has a retried task and logs."""
    backend.write_flow(FlowRecord(name="etl_pipeline", description="Nightly ETL", version="1.2"))
    backend.write_flow(FlowRecord(name="report"))
    ok = _completed_run(backend)
    failed = FlowRunRecord(
        RUN_FAILED, "etl_pipeline", "brisk-heron", tags=["adhoc"], created=at(3600)
    )
    advance(backend, failed, Pending(timestamp=at(3600)))
    advance(backend, failed, Running(timestamp=at(3601)))
    backend.write_task_run(TaskRunRecord(TASK_OTHER, "extract", "extract-0", RUN_FAILED))
    advance(backend, failed, Failed(message="Flow run failed: boom", timestamp=at(3726)))
    running = FlowRunRecord(RUN_RUNNING, "report", "calm-finch", created=at(7200))
    advance(backend, running, Running(timestamp=at(7200)))
    # Alive: a fresh heartbeat keeps crash detection (run by `ls`) from marking it.
    backend.heartbeat(RUN_RUNNING, utcnow())
    backend.flush()
    return Dataset(ok, failed, running)


def _completed_run(backend: Backend) -> FlowRunRecord:
    ok = FlowRunRecord(
        RUN_OK,
        "etl_pipeline",
        "amber-otter",
        parameters={"n": 3, "source": "s3://bucket/key"},
        tags=["nightly"],
        created=at(0),
    )
    advance(backend, ok, Pending(timestamp=at(0)))
    advance(backend, ok, Running(timestamp=at(0.5)))
    _task_runs(backend)
    backend.write_logs(_logs())
    advance(backend, ok, Completed(timestamp=at(84)))  # 83.5 s: "1m 23s"
    return ok


def _task_runs(backend: Backend) -> None:
    extract = TaskRunRecord(TASK_EXTRACT, "extract", "extract-0", RUN_OK)
    advance(backend, extract, Running(timestamp=at(1)))
    advance(backend, extract, Completed(timestamp=at(2.5)))
    transform = TaskRunRecord(
        TASK_TRANSFORM, "transform", "transform-0", RUN_OK, upstream_ids=[TASK_EXTRACT]
    )
    advance(backend, transform, Running(timestamp=at(3)))
    advance(backend, transform, AwaitingRetry(message="ValueError: flaky", timestamp=at(4)))
    advance(backend, transform, Retrying(timestamp=at(9)))
    advance(backend, transform, AwaitingRetry(message="ValueError: flaky", timestamp=at(10)))
    advance(backend, transform, Retrying(timestamp=at(15)))
    advance(backend, transform, Completed(timestamp=at(16.25)))
    for index, task_id in enumerate((TASK_LOAD_0, TASK_LOAD_1)):
        load = TaskRunRecord(
            task_id,
            "load",
            f"load-{index}",
            RUN_OK,
            map_index=index,
            upstream_ids=[TASK_TRANSFORM, TASK_EXTRACT],
        )
        advance(backend, load, Running(timestamp=at(20)))
        advance(backend, load, Completed(timestamp=at(20.25)))


def _logs() -> list[LogRecord]:
    flow_logger = "sluice.flow_runs"
    return [
        LogRecord(RUN_OK, None, 20, flow_logger, "Beginning flow run 'amber-otter'", at(0.6)),
        LogRecord(RUN_OK, TASK_EXTRACT, 10, "sluice.task_runs", "fetching rows", at(1.1)),
        LogRecord(
            RUN_OK, TASK_TRANSFORM, 30, "sluice.task_runs", "attempt 1 failed; retrying", at(4)
        ),
        LogRecord(RUN_OK, TASK_TRANSFORM, 20, "sluice.task_runs", "transformed 3 rows", at(16)),
        LogRecord(RUN_OK, None, 40, flow_logger, "[bold]not markup[/bold] done", at(83)),
    ]
