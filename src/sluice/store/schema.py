"""The store's tables, as SQLAlchemy Core metadata (SQLite and PostgreSQL alike).

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

Any change here needs a new migration in ``migrations/versions``, a new
:data:`sluice.store.revision.HEAD_REVISION` and the SQLite text regenerated
(``python -m sluice.store.sqlite_sqlgen --write``); tests check all three.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: 64-bit ids on PostgreSQL; on SQLite only ``INTEGER PRIMARY KEY`` is the
#: auto-incrementing rowid, so the variant keeps that.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

flow = Table(
    "flow",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("description", Text),
    Column("version", String),
    Column("created", Double, nullable=False),
)

flow_run = Table(
    "flow_run",
    metadata,
    Column("id", String, primary_key=True),
    Column("flow_name", String, nullable=False),
    Column("name", String, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("state_type", String, nullable=False),
    Column("state_name", String, nullable=False),
    Column("state_message", Text),
    Column("run_count", Integer, nullable=False),
    Column("start_time", Double),
    Column("end_time", Double),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Column("heartbeat", Double),
    Column("parent_flow_run_id", String),
    Column("parent_task_run_id", String),
    Column("flow_version", String),
    Column("hostname", String),
    Column("pid", Integer),
    Column("result", Text),
    # 0002: what a resume needs to run the flow again
    Column("entrypoint", Text),
    Column("parameters_ref", Text),
    Index("ix_flow_run_flow_name_created", "flow_name", "created"),
    # 0003: (created, id) matches the runs list's ORDER BY created DESC, id DESC
    Index("ix_flow_run_created_id", "created", "id"),
    Index("ix_flow_run_state_type", "state_type"),
    Index("ix_flow_run_parent_flow_run_id", "parent_flow_run_id"),
)

task_run = Table(
    "task_run",
    metadata,
    Column("id", String, primary_key=True),
    Column("task_name", String, nullable=False),
    Column("name", String, nullable=False),
    Column("flow_run_id", String),
    Column("call_index", Integer, nullable=False),
    Column("map_index", Integer, nullable=False),
    Column("tags", Text, nullable=False),
    Column("upstream_ids", Text, nullable=False),
    Column("state_type", String, nullable=False),
    Column("state_name", String, nullable=False),
    Column("state_message", Text),
    Column("run_count", Integer, nullable=False),
    Column("start_time", Double),
    Column("end_time", Double),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Column("cache_key", String),
    Column("result", Text),
    # 0002: cache validity and the journal's input check
    Column("cache_expiration", Double),
    Column("input_hash", String),
    Index("ix_task_run_flow_run_id_created", "flow_run_id", "created"),
    Index("ix_task_run_cache_key", "cache_key"),
    # the journal of a flow run: its Completed task runs
    Index("ix_task_run_flow_run_id_state_type", "flow_run_id", "state_type"),
)

run_state = Table(
    "run_state",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("run_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("type", String, nullable=False),
    Column("name", String, nullable=False),
    Column("timestamp", Double, nullable=False),
    Column("message", Text),
    Column("details", Text),
    Index("ix_run_state_run_id", "run_id"),
)

log = Table(
    "log",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("flow_run_id", String),
    Column("task_run_id", String),
    Column("level", Integer, nullable=False),
    Column("logger", String, nullable=False),
    Column("message", Text, nullable=False),
    Column("timestamp", Double, nullable=False),
    Index("ix_log_flow_run_id", "flow_run_id"),
    Index("ix_log_task_run_id", "task_run_id"),
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
