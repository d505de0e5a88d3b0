"""The store's tables, as SQLAlchemy Core metadata (SQLite and PostgreSQL alike).

Each table is derived from its record's declaration in :mod:`sluice.schemas`
(:func:`record_table`): one column per field, typed as the field's
annotation and metadata say (:mod:`sluice.columns`). Listed here, next to
each table: the columns its record does not carry (auto-incremented keys),
its indexes and unique constraints.

Conventions, chosen so both databases behave the same and filters stay fast:

* times are epoch seconds (UTC) in a ``Double`` column: cheap to write, to
  compare and to index, with no timezone handling in either driver;
* JSON-ish fields (parameters, tags, details) are JSON text in ``Text``
  columns, encoded and decoded by :mod:`sluice.store.rows`;
* no foreign keys: runs arrive through a write-behind batcher, and a child
  process may record a task run before its parent's flow run row is flushed,
  so the store accepts rows in any order;
* strings have no length limit (PostgreSQL ``VARCHAR`` without length), so a
  long task name never fails on PostgreSQL while passing on SQLite.

Any change here or in a stored record's declaration needs a new migration
in ``migrations/versions`` and the SQLite text regenerated
(``python -m sluice.store.sqlite_sqlgen --write``, which also records the
new head revision); tests check both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
)
from sluice.store.declarations import columns_of

metadata = MetaData()

#: 64-bit ids on PostgreSQL; on SQLite only ``INTEGER PRIMARY KEY`` is the
#: auto-incrementing rowid, so the variant keeps that.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

#: the SQLAlchemy type of each column type a declaration names
SQL_TYPES: dict[str, Any] = {
    "String": String,
    "Text": Text,
    "Integer": Integer,
    "BigInteger": BigInteger,
    "Double": Double,
    "Boolean": Boolean,
}


def record_table(name: str, record: type, *extra: Any) -> Table:
    """The table ``name`` of the stored record ``record``.

    Args:
        extra: columns the record does not carry (they come first), indexes
            and constraints.
    """
    keys = [item for item in extra if isinstance(item, Column)]
    rest = [item for item in extra if not isinstance(item, Column)]
    columns = [
        Column(spec.name, SQL_TYPES[spec.sql], primary_key=spec.primary_key, nullable=spec.nullable)
        for spec in columns_of(record)
    ]
    return Table(name, metadata, *keys, *columns, *rest)


flow = record_table("flow", FlowRecord, UniqueConstraint("name"))

flow_run = record_table(
    "flow_run",
    FlowRunRecord,
    Index("ix_flow_run_flow_name_created", "flow_name", "created"),
    # 0003: (created, id) matches the runs list's ORDER BY created DESC, id DESC
    Index("ix_flow_run_created_id", "created", "id"),
    # 0005: (state_type, created) reads one time window of each state (dashboard)
    Index("ix_flow_run_state_type_created", "state_type", "created"),
    Index("ix_flow_run_parent_flow_run_id", "parent_flow_run_id"),
    # 0004: one run per (deployment, scheduled time or caller's key); NULLs
    # never collide, so runs without a deployment or key are unaffected
    Index("ux_flow_run_deployment_idempotency", "deployment_id", "idempotency_key", unique=True),
    # 0004: workers claiming due runs of a pool
    Index("ix_flow_run_claim", "work_pool_name", "state_type", "scheduled_start_time"),
    # 0004: a deployment's runs by state (limits, the scheduler, listings)
    Index("ix_flow_run_deployment_state", "deployment_id", "state_type"),
)

task_run = record_table(
    "task_run",
    TaskRunRecord,
    Index("ix_task_run_flow_run_id_created", "flow_run_id", "created"),
    Index("ix_task_run_cache_key", "cache_key"),
    # the journal of a flow run: its Completed task runs
    Index("ix_task_run_flow_run_id_state_type", "flow_run_id", "state_type"),
)

run_state = record_table(
    "run_state",
    StateRecord,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Index("ix_run_state_run_id", "run_id"),
)

log = record_table(
    "log",
    LogRecord,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Index("ix_log_flow_run_id", "flow_run_id"),
    Index("ix_log_task_run_id", "task_run_id"),
)

deployment = record_table(
    "deployment",
    DeploymentRecord,
    Index("ux_deployment_flow_name_name", "flow_name", "name", unique=True),
    Index("ix_deployment_work_pool_name", "work_pool_name"),
)

work_pool = record_table("work_pool", WorkPoolRecord, UniqueConstraint("name"))

work_queue = record_table(
    "work_queue",
    WorkQueueRecord,
    Index("ux_work_queue_pool_name_name", "pool_name", "name", unique=True),
)

# The store names a worker's row: the record is named by (pool, name).
worker = record_table(
    "worker",
    WorkerRecord,
    Column("id", String, primary_key=True),
    Index("ux_worker_pool_name_name", "pool_name", "name", unique=True),
)

#: Every Sluice table, for checks that a database holds (or lacks) the store.
TABLE_NAMES = tuple(metadata.tables)

#: Alembic's own bookkeeping table, declared here so a fresh database can be
#: stamped without importing Alembic (same name, column and constraint name).
#: Not in :data:`metadata`: migrations never create or compare it.
version_table = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)
version_table.primary_key.name = "alembic_version_pkc"
