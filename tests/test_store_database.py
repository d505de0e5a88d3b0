"""Opening the database: SQLite setup, write locking, and clear errors for bad paths."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sluice.backend.local import LocalBackend
from sluice.errors import StoreCorruptError, StoreError
from sluice.settings import Settings, StoreSettings
from sluice.store import open_store
from sluice.store.database import run_write, write_connection
from sluice.store.retry import is_busy_error, retry_when_busy


def _settings(db: Path, lock_timeout: float = 5.0) -> Settings:
    return Settings(
        home=db.parent,
        database_url=f"sqlite:///{db}",
        store=StoreSettings(lock_timeout=lock_timeout, flush_interval=0.05),
    )


def test_new_database_uses_wal_and_normal_sync(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'store.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()
    assert (tmp_path / "deep" / "er" / "store.db").is_file()


def test_text_file_at_the_database_path_is_reported_at_open(tmp_path: Path) -> None:
    db = tmp_path / "sluice.db"
    db.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreCorruptError) as excinfo:
        LocalBackend(_settings(db))
    assert excinfo.value.path == str(db)
    assert str(db) in str(excinfo.value)
    assert "not a database" in excinfo.value.reason


def test_truncated_sqlite_file_is_reported_at_open(tmp_path: Path) -> None:
    db = tmp_path / "sluice.db"
    LocalBackend(_settings(db)).close()
    (tmp_path / "sluice.db-wal").unlink(missing_ok=True)
    db.write_bytes(db.read_bytes()[:100] + b"\x00garbage" * 200)
    with pytest.raises(StoreError, match=str(db)):
        LocalBackend(_settings(db))


def test_directory_at_the_database_path(tmp_path: Path) -> None:
    db = tmp_path / "sluice.db"
    db.mkdir()
    with pytest.raises(StoreError, match=str(db)):
        LocalBackend(_settings(db))


def test_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    db = blocker / "sub" / "sluice.db"
    with pytest.raises(StoreError, match=str(db)):
        LocalBackend(_settings(db))


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, where no one can create files")
def test_unwritable_location(tmp_path: Path) -> None:
    db = Path("/proc/sluice.db")
    with pytest.raises(StoreError, match=str(db)):
        LocalBackend(_settings(db))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "In-memory"),
        ("sqlite:///:memory:", "In-memory"),
        ("mysql://u@localhost/db", "SQLite or PostgreSQL"),
        ("not a url", "Invalid database URL"),
    ],
)
def test_unsupported_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_write_waits_for_the_lock_then_gives_up_with_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    engine = open_store(f"sqlite:///{db}", lock_timeout=0.3)
    holder = _hold_write_lock(db)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked") as excinfo:
            run_write(
                engine,
                lambda conn: conn.exec_driver_sql("DELETE FROM flow"),
                lock_timeout=0.3,
                label=str(db),
            )
        assert 0.25 < time.monotonic() - started < 5
        assert str(db) in str(excinfo.value)
    finally:
        holder.close()
        engine.dispose()


def test_write_succeeds_once_the_lock_is_released(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    engine = open_store(f"sqlite:///{db}", lock_timeout=10)
    holder = _hold_write_lock(db)
    releaser = threading.Timer(0.4, holder.execute, ["ROLLBACK"])
    releaser.start()
    try:
        run_write(
            engine,
            lambda conn: conn.execute(
                text("INSERT INTO flow (id, name, created) VALUES ('1', 'etl', 0)")
            ),
            lock_timeout=10,
        )
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM flow").scalar() == "etl"
    finally:
        releaser.join()
        holder.close()
        engine.dispose()


def test_write_transactions_take_the_write_lock_up_front(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    engine = open_store(f"sqlite:///{db}", lock_timeout=0.2)
    try:
        with write_connection(engine) as conn:
            conn.exec_driver_sql("SELECT 1")  # no write yet, but BEGIN IMMEDIATE ran
            other = sqlite3.connect(db, isolation_level=None, timeout=0.05)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                # Readers are never blocked (WAL).
                assert other.execute("SELECT count(*) FROM flow").fetchone() == (0,)
            finally:
                other.close()
    finally:
        engine.dispose()


def test_only_busy_errors_are_retried() -> None:
    calls = []

    def fails() -> None:
        calls.append(1)
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("no such table: x"))

    with pytest.raises(OperationalError):
        retry_when_busy(fails, lock_timeout=5)
    assert calls == [1]
    busy = OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
    assert is_busy_error(busy)
