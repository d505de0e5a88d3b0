"""Stored records declared once: tables, rows and records derived from the declarations.

Every stored record goes through its real table (SQLite, and PostgreSQL when
``SLUICE_TEST_PG_URL`` is set) with every declared field set; the engine's
batched writes are checked field by field in ``test_backend_contract.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

from sluice.columns import column
from sluice.schemas import (
    DeploymentRecord,
    FlowRecord,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
    new_id,
)
from sluice.store import open_store, schema
from sluice.store.declarations import columns_of
from sluice.store.rows import codec
from sluice.store.write_groups import COLUMNS, GROUP_NAMES, RecordKind
from tests.pg_databases import pg_database
from tests.record_samples import sample

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")

#: every stored record and its table
STORED = [
    (FlowRecord, schema.flow),
    (FlowRunRecord, schema.flow_run),
    (TaskRunRecord, schema.task_run),
    (StateRecord, schema.run_state),
    (LogRecord, schema.log),
    (DeploymentRecord, schema.deployment),
    (WorkPoolRecord, schema.work_pool),
    (WorkQueueRecord, schema.work_queue),
    (WorkerRecord, schema.worker),
]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL"),
        ),
    ]
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        created = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        yield created
        created.dispose()
        return
    with pg_database("sluice_records") as url:
        created = open_store(url)
        yield created
        created.dispose()


@pytest.mark.parametrize(("record", "table"), STORED, ids=[t.name for _, t in STORED])
def test_every_stored_record_round_trips_through_its_table(
    engine: Engine, record: type, table: Table
) -> None:
    written = sample(record)
    row = codec(record).row(written)
    # Keys the record does not carry and the database does not make: the store
    # names a worker's row.
    keys = {
        c.name: new_id()
        for c in table.c
        if c.name not in row and c.primary_key and c.autoincrement is not True
    }
    with engine.begin() as conn:
        conn.execute(table.insert(), {**keys, **row})
        found = conn.execute(select(table)).mappings().one()
    stamped = {s.name: None for s in columns_of(record) if s.write == "store"}
    assert codec(record).from_row(found) == dataclasses.replace(written, **stamped)


@pytest.mark.parametrize(("record", "table"), STORED, ids=[t.name for _, t in STORED])
def test_each_field_is_a_column_of_its_table(record: type, table: Table) -> None:
    columns = {c.name: c for c in table.c}
    for spec in columns_of(record):
        assert spec.name in columns, f"{record.__name__}.{spec.name} has no column"
        assert columns[spec.name].nullable == spec.nullable
        assert columns[spec.name].primary_key == spec.primary_key


def test_write_groups_carry_the_batched_columns_of_each_kind() -> None:
    assert COLUMNS[GROUP_NAMES[RecordKind.TASK_RUN]] == codec(TaskRunRecord).batched_names
    flow_run = COLUMNS[GROUP_NAMES[RecordKind.FLOW_RUN]]
    # Set by the store (heartbeat) or its own operations (a deployment's run,
    # a claim): the engine's writes never carry them, so never reset them.
    for name in ("heartbeat", "deployment_id", "idempotency_key", "worker_name", "job_variables"):
        assert name not in flow_run
    assert "attempt" in flow_run and "created" in flow_run


def test_a_snapshot_is_a_copy_the_engine_cannot_change() -> None:
    run = sample(TaskRunRecord)
    snapshot = codec(TaskRunRecord).snapshot(run)
    tags = list(run.tags)
    run.tags.append("later")
    run.state_name = "Later"
    again = codec(TaskRunRecord).from_snapshot(snapshot)
    assert again.tags == tags and again.state_name != "Later"
    state = sample(StateRecord)
    details = dict(state.details or {})
    snapshot = codec(StateRecord).snapshot(state)
    assert state.details is not None
    state.details["later"] = True
    assert codec(StateRecord).from_snapshot(snapshot).details == details


def test_values_reuse_a_time_that_is_the_same_object_and_not_one_that_is_equal() -> None:
    run = sample(TaskRunRecord)
    task_run = codec(TaskRunRecord)
    at = {name: i for i, name in enumerate(task_run.batched_names)}
    run.updated = run.end_time  # the same datetime: a finished run's last update
    values = task_run.values(task_run.snapshot(run))
    assert values[at["updated"]] == values[at["end_time"]] == run.updated.timestamp()
    assert run.start_time is not None
    run.updated = run.start_time + dt.timedelta(seconds=1)
    values = task_run.values(task_run.snapshot(run))
    assert values[at["updated"]] == run.updated.timestamp()


@dataclasses.dataclass
class _Odd:
    id: str
    when: dt.date


@dataclasses.dataclass
class _BadHint:
    id: str
    name: str = dataclasses.field(default="x", metadata=column(often_same_as=("id",)))


@dataclasses.dataclass
class _NullableWithoutDefault:
    id: str
    count: int = dataclasses.field(metadata=column(nullable=True))


@dataclasses.dataclass
class _StampedWithoutDefault:
    id: str
    seen: dt.datetime = dataclasses.field(metadata=column(write="store"))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_Odd, r"_Odd\.when: no column form"),
        (_StampedWithoutDefault, r"_StampedWithoutDefault\.seen: a field the engine's writes"),
        (_BadHint, r"_BadHint\.name: often_same_as names 'id'"),
        (_NullableWithoutDefault, r"_NullableWithoutDefault\.count: a nullable column"),
    ],
)
def test_a_declaration_without_a_column_form_is_refused_naming_the_field(
    record: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        columns_of(record)
