"""The stdlib SQLite path: generated SQL stays in step with SQLAlchemy, URLs, schema checks."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from sluice.backend.local import LocalBackend
from sluice.errors import StoreCorruptError, StoreError
from sluice.schemas import FlowRecord, FlowRunRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings
from sluice.states import StateType, utcnow
from sluice.store import sqlite_sql, sqlite_sqlgen
from sluice.store.revision import HEAD_REVISION
from sluice.store.rows import FLOW, FLOW_RUN, STATE, TASK_RUN
from sluice.store.schema import TABLE_NAMES
from sluice.store.sqlite_native import SqliteStore, bind_none_directly, sqlite_file


def test_generated_sql_module_is_current() -> None:
    # Fails after a change to a stored record's declaration, schema.py, writes.py
    # or the migrations until ``python -m sluice.store.sqlite_sqlgen --write`` is run.
    committed = sqlite_sqlgen.TARGET.read_text(encoding="utf-8")
    assert committed == sqlite_sqlgen.render(), (
        "src/sluice/store/sqlite_sql.py is stale: run python -m sluice.store.sqlite_sqlgen --write"
    )


def test_generated_schema_is_stamped_with_the_head_revision() -> None:
    assert sqlite_sql.TABLE_NAMES == TABLE_NAMES
    assert sqlite_sql.CREATE_SCHEMA[-1].endswith(f"VALUES ('{HEAD_REVISION}')")


def test_value_tuples_follow_the_generated_parameter_order() -> None:
    # The embedded writer binds these tuples as they are, without row dicts.
    assert sqlite_sql.WRITES["flow_runs"][1] == FLOW_RUN.batched_names
    assert sqlite_sql.WRITES["task_runs"][1] == TASK_RUN.batched_names
    assert sqlite_sql.WRITES["states"][1] == STATE.batched_names


def test_generator_check_mode(capsys: pytest.CaptureFixture[str]) -> None:
    sqlite_sqlgen.main(["--check"])
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///relative/store.db",
        "sqlite:////abs/path/store.db",
        "sqlite:///with%20space%25.db",
        "sqlite+pysqlite:///x.db",
        "sqlite:///~/x.db",
    ],
)
def test_sqlite_urls_name_the_file_sqlalchemy_would_open(url: str) -> None:
    database = make_url(url).database
    assert database is not None
    assert sqlite_file(url) == Path(database).expanduser().resolve()


def test_other_urls_are_not_sqlite() -> None:
    assert sqlite_file("postgresql+psycopg://u@localhost/db") is None
    assert sqlite_file("not a url") is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///x.db?mode=memory&cache=shared", "In-memory"),
        ("sqlite:///x.db?timeout=5", "plain file URL"),
        ("sqlite+aiosqlite:///x.db", "plain file URL"),
        ("sqlite://host/x.db", "plain file URL"),
    ],
)
def test_sqlite_urls_the_store_refuses(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        sqlite_file(url)


def _tables(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(name for (name,) in rows)
    finally:
        conn.close()


def test_a_new_store_is_created_once_and_reopened_without_changes(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    SqliteStore(db).close()
    assert _tables(db) == sorted([*TABLE_NAMES, "alembic_version"])
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (HEAD_REVISION,)
        ]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    SqliteStore(db).close()  # at head: nothing to do


def test_a_store_from_a_newer_sluice_is_refused_by_the_backend(tmp_path: Path) -> None:
    db = tmp_path / "sluice.db"
    SqliteStore(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    # Not at head: handed to Alembic, which knows no such revision.
    with pytest.raises(StoreError, match="newer"):
        LocalBackend(Settings(home=tmp_path))


def test_another_applications_file_is_left_alone_by_the_backend(tmp_path: Path) -> None:
    db = tmp_path / "sluice.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(StoreCorruptError, match="not a Sluice database"):
        LocalBackend(Settings(home=tmp_path))
    assert _tables(db) == ["invoices"]


def test_a_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = SqliteStore(db, lock_timeout=1)
    try:
        flow_run = FLOW_RUN.values(FLOW_RUN.snapshot(FlowRunRecord(new_id(), "etl", "r")))
        task_run = TASK_RUN.values(TASK_RUN.snapshot(TaskRunRecord("t", "t", "t")))
        broken = (task_run[0], None, *task_run[2:])  # NOT NULL: fails after the flow run row
        with pytest.raises(StoreError, match="NOT NULL") as excinfo:
            store.write_values([("flow_runs", [flow_run]), ("task_runs", [broken])])
        assert str(db) in str(excinfo.value)
        assert _count(db, "flow_run") == 0
        store.write_values([("flow_runs", [flow_run]), ("task_runs", [task_run])])
        assert (_count(db, "flow_run"), _count(db, "task_run")) == (1, 1)
    finally:
        store.close()


def test_long_groups_are_written_whole_and_in_order(tmp_path: Path) -> None:
    # More rows than one many-rows statement takes: whole chunks, then the rest.
    db = tmp_path / "store.db"
    store = SqliteStore(db, lock_timeout=1)
    try:
        runs = [TaskRunRecord(id=new_id(), task_name="t", name=f"t-{i}") for i in range(120)]
        states = [
            StateRecord(runs[0].id, "task", StateType.RUNNING, f"s{i}", utcnow())
            for i in range(300)
        ]
        store.write_values(
            [
                ("task_runs", [TASK_RUN.values(TASK_RUN.snapshot(r)) for r in runs]),
                ("states", [STATE.values(STATE.snapshot(s)) for s in states]),
            ]
        )
        store.write_values([("task_runs", [TASK_RUN.values(TASK_RUN.snapshot(runs[5]))])])
        conn = sqlite3.connect(db)
        try:
            names = [n for (n,) in conn.execute("SELECT name FROM run_state ORDER BY id")]
            task_runs = [n for (n,) in conn.execute("SELECT name FROM task_run ORDER BY id")]
        finally:
            conn.close()
        assert names == [s.name for s in states]
        assert sorted(task_runs) == sorted(r.name for r in runs)
    finally:
        store.close()


def test_none_binds_as_null_and_a_foreign_none_adapter_is_kept(tmp_path: Path) -> None:
    key = (type(None), sqlite3.PrepareProtocol)
    saved = sqlite3.adapters.pop(key, None)
    try:
        store = SqliteStore(tmp_path / "store.db", lock_timeout=1)
        store.close()
        assert key in sqlite3.adapters
        conn = sqlite3.connect(":memory:")
        assert conn.execute("SELECT ? IS NULL", (None,)).fetchone() == (1,)
        conn.close()

        def foreign(value: None) -> None:
            return value

        sqlite3.adapters[key] = foreign
        bind_none_directly()
        assert sqlite3.adapters[key] is foreign
    finally:
        sqlite3.adapters.pop(key, None)
        if saved is not None:
            sqlite3.adapters[key] = saved


def test_a_batch_waits_for_another_writer(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = SqliteStore(db, lock_timeout=10)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, holder.execute, ["ROLLBACK"])
    releaser.start()
    try:
        started = time.monotonic()
        store.write_values([("flows", [FLOW.values(FLOW.snapshot(FlowRecord(name="etl")))])])
        assert time.monotonic() - started > 0.2
        assert _count(db, "flow") == 1
    finally:
        releaser.join()
        holder.close()
        store.close()


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()
