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
    Boolean,
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
    # 0004: runs of deployments (set at creation, never overwritten by a run's snapshots)
    Column("deployment_id", String),
    Column("work_pool_name", String),
    Column("work_queue_name", String),
    Column("scheduled_start_time", Double),
    Column("idempotency_key", String),
    Column("worker_name", String),
    # 0006: run_deployment(job_variables=...), JSON (NULL: none)
    Column("job_variables", Text),
    # 0007: liveness and fencing: which execution holds the run, and the
    # identity of its process (host, pid and the process's start time)
    Column("attempt", Integer),
    Column("host_id", String),
    Column("pid_started", BigInteger),
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

deployment = Table(
    "deployment",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("flow_name", String, nullable=False),
    Column("entrypoint", Text, nullable=False),
    Column("working_dir", Text),
    Column("parameters", Text, nullable=False),
    Column("parameter_schema", Text),
    Column("tags", Text, nullable=False),
    Column("version", String),
    Column("description", Text),
    Column("work_pool_name", String, nullable=False),
    Column("work_queue_name", String, nullable=False),
    Column("schedules", Text, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("concurrency_limit", Integer),
    Column("max_active_runs", Integer),
    Column("catchup", Boolean, nullable=False),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Column("planned_until", Double),
    Index("ux_deployment_flow_name_name", "flow_name", "name", unique=True),
    Index("ix_deployment_work_pool_name", "work_pool_name"),
)

work_pool = Table(
    "work_pool",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("type", String, nullable=False),
    Column("description", Text),
    Column("concurrency_limit", Integer),
    Column("paused", Boolean, nullable=False),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
)

work_queue = Table(
    "work_queue",
    metadata,
    Column("id", String, primary_key=True),
    Column("pool_name", String, nullable=False),
    Column("name", String, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("description", Text),
    Column("concurrency_limit", Integer),
    Column("paused", Boolean, nullable=False),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Index("ux_work_queue_pool_name_name", "pool_name", "name", unique=True),
)

worker = Table(
    "worker",
    metadata,
    Column("id", String, primary_key=True),
    Column("pool_name", String, nullable=False),
    Column("name", String, nullable=False),
    Column("status", String, nullable=False),
    Column("last_heartbeat", Double, nullable=False),
    Column("hostname", String),
    Column("pid", Integer),
    Column("created", Double, nullable=False),
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
