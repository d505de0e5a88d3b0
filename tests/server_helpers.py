"""Building API payloads in tests: records serialized exactly as the contract says."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from sluice.api_schemas import HeartbeatWrite, IngestBatch
from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.states import State, StateType
from tests.pg_databases import pg_database, postgresql_param

R = TypeVar("R", FlowRunRecord, TaskRunRecord)

BATCH = TypeAdapter(IngestBatch)
# Read at import: the autouse fixture in conftest.py clears SLUICE_* per test.
PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
#: the databases a store-level test runs on: SQLite, and PostgreSQL when there is one
DIALECTS = ["sqlite", postgresql_param()]
UTC = _dt.timezone.utc
T0 = _dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> _dt.datetime:
    return T0 + _dt.timedelta(seconds=seconds)


def payload(batch: IngestBatch) -> Any:
    return BATCH.dump_python(batch, mode="json")


@dataclass
class Write(Generic[R]):
    """A run and the state it just took (what the engine hands a backend)."""

    run: R
    state: StateRecord | None = None


def ingest_batch(
    *,
    flows: Sequence[FlowRecord] = (),
    flow_runs: Sequence[Write[FlowRunRecord]] = (),
    task_runs: Sequence[Write[TaskRunRecord]] = (),
    logs: Sequence[LogRecord] = (),
    heartbeats: Sequence[HeartbeatWrite] = (),
    resent: bool = False,
) -> IngestBatch:
    """The ingest batch of these writes: each run, and the states in order."""
    writes: list[Write[Any]] = [*flow_runs, *task_runs]
    return IngestBatch(
        flows=list(flows),
        flow_runs=[w.run for w in flow_runs],
        task_runs=[w.run for w in task_runs],
        states=[w.state for w in writes if w.state is not None],
        logs=list(logs),
        heartbeats=list(heartbeats),
        resent=resent,
    )


def flow_run(
    state: StateType = StateType.PENDING, *, flow_name: str = "etl", tags: list[str] | None = None,
    created: float = 0.0, heartbeat: float | None = None,
) -> tuple[FlowRunRecord, Write[FlowRunRecord]]:  # fmt: skip
    """A flow run in ``state`` (with that state as its history entry)."""
    run = FlowRunRecord(
        id=new_id(), flow_name=flow_name, name=f"run-{new_id()[-6:]}", tags=tags or [],
        created=at(created), updated=at(created),
        heartbeat=None if heartbeat is None else at(heartbeat),
    )  # fmt: skip
    new_state = State(state, timestamp=at(created + 1))
    run.apply(new_state)
    return run, Write(run, StateRecord.from_state(run.id, "flow", new_state))


def task_run(
    flow_run_id: str, *, index: int = 0, cache_key: str | None = None
) -> Write[TaskRunRecord]:
    run = TaskRunRecord(
        id=new_id(), task_name="extract", name=f"extract-{index}", flow_run_id=flow_run_id,
        call_index=index, cache_key=cache_key, result='{"json": 1}' if cache_key else None,
        created=at(index),
    )  # fmt: skip
    state = State(StateType.COMPLETED, timestamp=at(index + 1))
    run.apply(state)
    return Write(run, StateRecord.from_state(run.id, "task", state))


def log(flow_run_id: str, message: str, level: int = 20) -> LogRecord:
    return LogRecord(flow_run_id, None, level, "sluice.flow", message, at(2))


def heartbeat(flow_run_id: str, seconds: float) -> HeartbeatWrite:
    return HeartbeatWrite(flow_run_id, at(seconds))


__all__ = [
    "BATCH",
    "DIALECTS",
    "PG_URL",
    "FlowRecord",
    "IngestBatch",
    "Write",
    "at",
    "flow_run",
    "full_batch",
    "ingest_batch",
    "log",
    "payload",
    "pg_database",
    "task_run",
]


FULL_T0 = _dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=_dt.timezone.utc)


def full_batch() -> IngestBatch:
    """One record of each kind, with every optional field set."""
    flow_run = FlowRunRecord(
        new_id(), "etl", "r", parameters={"xs": [1, 2], "when": "x"}, tags=["a"],
        state_type=StateType.RUNNING, state_name="Running", run_count=1, start_time=FULL_T0,
        heartbeat=FULL_T0, hostname="h", pid=7, entrypoint="f.py:etl",
    )  # fmt: skip
    task_run = TaskRunRecord(
        new_id(), "t", "t-3", flow_run.id, call_index=3, map_index=2, tags=["b"],
        upstream_ids=[new_id()], state_type=StateType.COMPLETED, state_name="Cached",
        run_count=2, start_time=FULL_T0, end_time=FULL_T0, cache_key="k", cache_expiration=FULL_T0,
        input_hash="h", result='{"s":"json","v":1}',
    )  # fmt: skip
    state = StateRecord(task_run.id, "task", StateType.FAILED, "Failed", FULL_T0, "boom", {"n": 1})
    log = LogRecord(flow_run.id, task_run.id, 40, "sluice.task", "héllo ✓", FULL_T0)
    return IngestBatch(
        flows=[FlowRecord("etl", created=FULL_T0)],
        flow_runs=[flow_run],
        task_runs=[task_run],
        states=[state],
        logs=[log],
        heartbeats=[HeartbeatWrite(flow_run.id, FULL_T0)],
        resent=True,
    )
