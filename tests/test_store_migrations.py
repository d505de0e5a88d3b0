"""Schema versions: Alembic's history and the fast create/stamp path agree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from sluice.errors import StoreCorruptError, StoreError
from sluice.store import open_store
from sluice.store.database import open_engine
from sluice.store.migrate import alembic_config, current_revision, reset, upgrade
from sluice.store.revision import HEAD_REVISION
from sluice.store.schema import TABLE_NAMES, metadata
from tests.pg_databases import pg_database

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def pg_urls() -> Iterator[list[str]]:
    """Two fresh PostgreSQL databases, dropped afterwards."""
    with pg_database("sluice_mig") as first, pg_database("sluice_mig") as second:
        yield [first, second]


def test_head_revision_is_the_scripts_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


def _describe(engine: Engine) -> dict[str, Any]:
    """Everything about the Sluice tables that a migration must reproduce: each column's
    type and nullability, the primary key, indexes and unique constraints.

    Columns are compared by name, not position: a table derived from its record
    lists them in the record's field order, a migrated one in the order the
    migrations added them, and every statement names the columns it uses.
    """
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(TABLE_NAMES):
        out[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            },
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return out


def _assert_upgrade_matches_create_all(via_alembic_url: str, via_create_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    migrated = open_engine(via_alembic_url)
    created = open_engine(via_create_url)
    try:
        upgrade(migrated)
        # Brand new: created and stamped without Alembic (on SQLite by the generated SQL).
        open_store(via_create_url).dispose()
        with migrated.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        with created.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert _describe(migrated) == _describe(created)
    finally:
        migrated.dispose()
        created.dispose()


def test_alembic_upgrade_matches_create_all_on_sqlite(tmp_path: Path) -> None:
    _assert_upgrade_matches_create_all(
        _sqlite_url(tmp_path / "migrated.db"), _sqlite_url(tmp_path / "created.db")
    )


@pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
def test_alembic_upgrade_matches_create_all_on_postgresql(pg_urls: list[str]) -> None:
    _assert_upgrade_matches_create_all(pg_urls[0], pg_urls[1])


def test_opening_never_imports_alembic_for_new_or_current_databases(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from sluice.store import open_store
        url = sys.argv[1]
        open_store(url).dispose()   # brand new: created and stamped
        open_store(url).dispose()   # current: one SELECT
        assert "alembic" not in sys.modules, "alembic was imported"
        print("ok")
        """
    )
    url = _sqlite_url(tmp_path / "fast.db")
    done = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_database_upgraded_by_alembic_opens_without_changes(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "store.db")
    engine = open_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    engine = open_store(url)
    try:
        upgrade(engine)  # already at head: a no-op, not an error
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
    finally:
        engine.dispose()


def _create_at_revision(url: str, revision: str) -> None:
    """A store as an older Sluice left it: Alembic's history up to ``revision``."""
    from alembic import command

    engine = open_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            assert current_revision(conn) == revision
    finally:
        engine.dispose()


_ROWS_0001 = (
    "INSERT INTO flow (id, name, created) VALUES ('f1', 'etl', 1.0)",
    "INSERT INTO flow_run (id, flow_name, name, parameters, tags, state_type, state_name,"
    " run_count, start_time, created, updated, heartbeat, result) VALUES ('r1', 'etl', 'run',"
    """ '{"n":1}', '["a"]', 'COMPLETED', 'Completed', 1, 2.0, 1.0, 3.0, 2.5, 'res')""",
    "INSERT INTO task_run (id, task_name, name, flow_run_id, call_index, map_index, tags,"
    " upstream_ids, state_type, state_name, run_count, created, updated, cache_key, result)"
    " VALUES ('t1', 'extract', 'extract-0', 'r1', 0, -1, '[]', '[]', 'COMPLETED', 'Completed',"
    " 1, 1.5, 2.0, 'key', 'res-t')",
    "INSERT INTO run_state (run_id, kind, type, name, timestamp) VALUES"
    " ('r1', 'flow', 'COMPLETED', 'Completed', 3.0)",
)


def _assert_0001_store_upgrades_on_open(url: str, tmp_path: Path) -> None:
    import datetime as dt

    from sluice.backend.local import LocalBackend
    from sluice.schemas import TaskRunRecord
    from sluice.settings import Settings
    from sluice.states import StateType

    _create_at_revision(url, "0001")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in _ROWS_0001:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()

    backend = LocalBackend(Settings(home=tmp_path / "home", database_url=url))
    try:
        with backend.engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
        assert backend.read_flow("etl").id == "f1"
        run = backend.read_flow_run("r1")
        assert (run.parameters, run.tags, run.result) == ({"n": 1}, ["a"], "res")
        assert (run.entrypoint, run.parameters_ref) == (None, None)
        assert run.heartbeat == dt.datetime.fromtimestamp(2.5, dt.timezone.utc)
        (task,) = backend.read_journal("r1")
        assert (task.id, task.cache_key, task.result) == ("t1", "key", "res-t")
        assert (task.cache_expiration, task.input_hash) == (None, None)
        now = dt.datetime.fromtimestamp(10.0, dt.timezone.utc)
        assert backend.find_cached_task_run("key", now) == task
        assert [s.type for s in backend.read_states("r1")] == [StateType.COMPLETED]
        # The new columns take values.
        task2 = TaskRunRecord(
            id="t2", task_name="extract", name="x", cache_expiration=now, input_hash="h"
        )
        backend.write_task_run(task2)
        assert backend.read_task_run("t2") == task2
    finally:
        backend.close()


def test_store_at_revision_0001_is_upgraded_on_open_keeping_rows_sqlite(tmp_path: Path) -> None:
    _assert_0001_store_upgrades_on_open(_sqlite_url(tmp_path / "old.db"), tmp_path)


@pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
def test_store_at_revision_0001_is_upgraded_on_open_keeping_rows_postgresql(
    pg_urls: list[str], tmp_path: Path
) -> None:
    _assert_0001_store_upgrades_on_open(pg_urls[0], tmp_path)


def _set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    finally:
        engine.dispose()


def test_unknown_revision_is_reported_as_from_a_newer_sluice(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "store.db")
    open_store(url).dispose()
    _set_revision(url, "9999")
    with pytest.raises(StoreError, match="9999") as excinfo:
        open_store(url)
    assert "newer" in str(excinfo.value)


def test_sluice_tables_without_a_revision_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = create_engine(_sqlite_url(path))
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    with pytest.raises(StoreCorruptError) as excinfo:
        open_store(_sqlite_url(path))
    assert excinfo.value.path == str(path)
    assert "no schema revision" in str(excinfo.value)


def test_another_applications_sqlite_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "theirs.db"
    engine = create_engine(_sqlite_url(path))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    finally:
        engine.dispose()
    with pytest.raises(StoreCorruptError, match="not a Sluice database"):
        open_store(_sqlite_url(path))
    engine = create_engine(_sqlite_url(path))
    try:
        assert inspect(engine).get_table_names() == ["invoices"]
    finally:
        engine.dispose()


def test_reset_empties_the_store(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "store.db")
    engine = open_store(url)
    try:
        with engine.begin() as conn:
            conn.execute(metadata.tables["flow"].insert().values(id="1", name="etl", created=0.0))
        reset(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM flow")).scalar() == 0
            assert current_revision(conn) == HEAD_REVISION
    finally:
        engine.dispose()
