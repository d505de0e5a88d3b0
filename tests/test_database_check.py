"""``sluice server database check`` on real stores: healthy, with a damaged page, not a
database at all, with a damaged write-ahead log header, on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backend.factory import close_backends
from sluice.store.health import wal_header_problem
from sluice.store.revision import HEAD_REVISION
from tests.pg_databases import create_pg_database, drop_pg_database

SLUICE = Path(sys.executable).with_name("sluice")
PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")

pytestmark = pytest.mark.integration

#: records a flow run of 40 task runs, then dies by SIGKILL: its last commits are
#: still in the write-ahead log (only a checkpoint or a clean close copies them over)
RECORD_THEN_DIE = textwrap.dedent(
    """
    import os, signal
    from sluice import flow, task
    from sluice.backend.factory import get_backend

    @task
    def step(i: int) -> int:
        return i

    @flow(name="before-the-damage")
    def work(n: int) -> int:
        return sum(step(i) for i in range(n))

    work(40)
    get_backend().flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture(autouse=True)
def closed_backends() -> Iterator[None]:
    yield
    close_backends()


def check(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SLUICE), "server", "database", "check", *extra], capture_output=True, text=True,
        env=env or dict(os.environ), timeout=120,
    )  # fmt: skip


def record_runs(home: Path, *, die: bool = False) -> None:
    """Record a flow run into ``home``'s store from another process."""
    code = RECORD_THEN_DIE if die else RECORD_THEN_DIE.replace("os.kill(", "# os.kill(")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "SLUICE_HOME": str(home)},
    )  # fmt: skip
    expected = -signal.SIGKILL if die else 0
    assert done.returncode == expected, done.stderr[-2000:]


def test_a_healthy_store_is_one_line_and_exit_0(sluice_home: Path) -> None:
    record_runs(sluice_home)
    done = check()
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line
    assert line.startswith(f"{sluice_home / 'sluice.db'}: ok (schema {HEAD_REVISION}, ")
    assert "1 flow runs, 40 task runs" in line and line.endswith("integrity: integrity_check ok)")
    assert "quick_check ok" in check("--quick").stdout
    data = json.loads(check("-o", "json").stdout)
    assert data["ok"] is True and data["counts"]["task_run"] == 40
    assert data["revision"] == HEAD_REVISION


def test_a_damaged_page_fails_the_check(sluice_home: Path) -> None:
    record_runs(sluice_home)
    db = sluice_home / "sluice.db"
    with sqlite3.connect(db) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'ix_task_run_flow_run_id_created'"
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(db, "r+b") as f:  # an impossible b-tree page type
        f.seek(page_size * (root - 1))
        f.write(b"\x55")
    done = check()
    assert done.returncode == 1
    assert done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith(f"{db}: NOT OK: integrity_check")


def test_a_file_that_is_not_a_database_fails_the_check(sluice_home: Path) -> None:
    sluice_home.mkdir(parents=True)
    (sluice_home / "sluice.db").write_bytes(b"not a database at all\x00" * 300)
    done = check()
    assert done.returncode == 1
    assert "NOT OK" in done.stderr and "not a database" in done.stderr


def test_a_missing_store_is_reported(sluice_home: Path) -> None:
    done = check()
    assert done.returncode == 1 and "no database file at this path" in done.stderr
    assert not (sluice_home / "sluice.db").exists()  # the check created nothing


def test_a_damaged_wal_header_is_caught_before_sqlite_discards_the_log(sluice_home: Path) -> None:
    record_runs(sluice_home)  # ends cleanly: its commits are copied into the database file
    record_runs(sluice_home, die=True)
    db, wal = sluice_home / "sluice.db", sluice_home / "sluice.db-wal"
    assert wal.stat().st_size > 32, "the run's commits should still be in the log"
    log = bytearray(wal.read_bytes())
    log[17] ^= 0x40  # one bit of the header's first salt
    wal.write_bytes(bytes(log))
    done = check()
    assert done.returncode == 1
    line = done.stderr.strip()
    assert "\n" not in line
    assert "write-ahead log sluice.db-wal is damaged (its header's checksum does not match)" in line
    assert wal.read_bytes() == bytes(log), "the check must leave the log as it was"
    # Why it matters (SQLite's own behaviour, documented in docs/architecture.md): once
    # the store is opened, the log is ignored and the run's commits are silently gone,
    # while the database file alone passes the integrity check.
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT count(*) FROM flow_run").fetchone()
        verdict = conn.execute("PRAGMA integrity_check").fetchone()
    conn.close()
    assert runs == (1,) and verdict == ("ok",)  # two runs were recorded


def test_every_byte_of_a_wal_header_matters(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    log = (tmp_path / "x.db-wal").read_bytes()
    conn.close()
    assert wal_header_problem(log[:32], len(log)) is None
    assert wal_header_problem(log[:32], 32) is None  # no frames: nothing to lose
    for position in range(32):
        for bit in (0x01, 0x80):
            damaged = bytearray(log[:32])
            damaged[position] ^= bit
            assert wal_header_problem(bytes(damaged), len(log)) is not None, (position, bit)


@pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
def test_postgresql_reports_revision_counts_and_reachability() -> None:
    from sluice.backend.factory import get_backend
    from sluice.schemas import FlowRecord
    from sluice.settings import Settings

    url = create_pg_database("sluice_check")
    try:
        backend = get_backend(Settings(database_url=url))
        backend.write_flow(FlowRecord("on-postgres"))
        backend.flush()
        close_backends()
        done = check(env={**os.environ, "SLUICE_DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        assert f"schema {HEAD_REVISION}, 1 flows, 0 flow runs" in done.stdout
        assert "data checksums" in done.stdout
        gone = url.rsplit("/", 1)[0].replace(":5432", ":1") + "/nowhere"
        unreachable = check(env={**os.environ, "SLUICE_DATABASE_URL": gone})
        assert unreachable.returncode == 1 and "cannot be reached" in unreachable.stderr
    finally:
        close_backends()
        drop_pg_database(url)
