"""Is the store there and whole, and what does it hold: ``sluice server database check``.

SQLite: the write-ahead log is looked at *before* the database is opened (see
:func:`wal_header_problem`), then the file is opened read-only for SQLite's
``PRAGMA integrity_check`` (or the faster ``quick_check``), the schema revision
and the row counts. PostgreSQL checks its own pages (data checksums, if the
cluster has them); what is meaningful from here is that it answers, which
schema revision it holds, and the counts.

Why the log first: SQLite ignores a write-ahead log whose header is damaged
(a wrong magic number, version or checksum) as if it were empty, and the next
connection resets it. Commits in it that were not yet copied into the database
file (a checkpoint does that, every ~1000 pages or when the last connection
closes) are then gone without an error, and the database file alone still
passes ``integrity_check``. Reading the header first is the only moment the
loss can be noticed, and the log is left as it is for recovery.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.store.revision import HEAD_REVISION

#: the tables whose rows ``check`` counts, as shown
COUNTED = (
    ("flow", "flows"),
    ("flow_run", "flow runs"),
    ("task_run", "task runs"),
    ("log", "log lines"),
    ("deployment", "deployments"),
)
_WAL_HEADER = 32
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_VERSION = 3007000

#: runs one SQL statement, returns its rows (a DB-API or SQLAlchemy connection's execute)
Query = Callable[[str], Iterable[Sequence[Any]]]


@dataclass
class StoreHealth:
    """What a check found.

    Attributes:
        label: the database file, or its URL without password.
        revision: the schema revision it holds (None: none, or unreadable).
        counts: rows per counted table (see :data:`COUNTED`).
        integrity: the integrity check's verdict, in a few words.
        problems: why the store is damaged or unusable (empty: it is fine).
        notes: things worth knowing that are not damage (an upgrade pending).
    """

    label: str
    revision: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    integrity: str = "not checked"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """The whole report on one line."""
        parts = [f"schema {self.revision or '-'}"]
        parts += [
            f"{self.counts[table]:,} {shown}" for table, shown in COUNTED if table in self.counts
        ]
        parts.append(f"integrity: {self.integrity}")
        verdict = "ok" if self.ok else "NOT OK: " + "; ".join(self.problems)
        notes = "".join(f"; {note}" for note in self.notes)
        return f"{self.label}: {verdict} ({', '.join(parts)}{notes})"


def wal_header_problem(header: bytes, size: int) -> str | None:
    """Why SQLite would ignore a write-ahead log starting with ``header`` (its first
    32 bytes) in a file of ``size`` bytes, or None when it is sound or holds no frames.

    Pure: the caller reads the file.
    """
    if size <= _WAL_HEADER:
        return None  # an empty log (or a fresh one) holds nothing to lose
    if len(header) < _WAL_HEADER:
        return "its header is cut short"
    magic, version, page_size = struct.unpack(">3I", header[:12])
    if magic not in _WAL_MAGIC:
        return f"its header's magic number is wrong ({magic:#010x})"
    if version != _WAL_VERSION:
        return f"its header's format version is wrong ({version})"
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        return f"its header's page size is wrong ({page_size})"
    # SQLite's checksum: 32-bit words in the byte order the magic number's low
    # bit names, summed pairwise into two running totals.
    order = ">" if magic & 1 else "<"
    words = struct.unpack(order + "6I", header[:24])
    first = second = 0
    for i in range(0, 6, 2):
        first = (first + words[i] + second) & 0xFFFFFFFF
        second = (second + words[i + 1] + first) & 0xFFFFFFFF
    if (first, second) != struct.unpack(">2I", header[24:32]):
        return "its header's checksum does not match"
    return None


def check_store(url: str, *, quick: bool = False) -> StoreHealth:
    """Check the store at ``url`` (SQLite file or PostgreSQL); never changes it.

    Args:
        quick: SQLite's ``quick_check`` instead of the full ``integrity_check``
            (which reads every index against its table: minutes on a large store).
    """
    from sluice.store.sqlite_native import sqlite_file

    path = sqlite_file(url)
    if path is not None:
        return _check_sqlite(path, quick=quick)
    return _check_postgresql(url)


def _check_sqlite(path: Path, *, quick: bool) -> StoreHealth:
    health = StoreHealth(str(path))
    if not path.exists():
        health.problems.append("no database file at this path")
        return health
    wal = Path(f"{path}-wal")
    if wal.exists():
        with open(wal, "rb") as f:
            header = f.read(_WAL_HEADER)
        problem = wal_header_problem(header, os.path.getsize(wal))
        if problem is not None:
            # Opening the database now would make SQLite discard the log.
            health.problems.append(
                f"write-ahead log {wal.name} is damaged ({problem}): SQLite ignores it, and "
                f"the commits in its {os.path.getsize(wal):,} bytes not yet in the database "
                "are lost; it was not opened, copy the log away before using the store"
            )
            health.integrity = "not checked (the log would be discarded)"
            return health
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        health.problems.append(f"cannot be opened: {exc}")
        return health
    try:
        _inspect_sqlite(conn, health, quick=quick)
    finally:
        conn.close()
    return health


def _inspect_sqlite(conn: sqlite3.Connection, health: StoreHealth, *, quick: bool) -> None:
    pragma = "quick_check" if quick else "integrity_check"
    try:
        found = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}(20)")]
    except sqlite3.DatabaseError as exc:
        health.integrity = f"{pragma} failed"
        health.problems.append(f"{pragma}: {_first_line(exc)}")
        return
    if found == ["ok"]:
        health.integrity = f"{pragma} ok"
    else:
        health.integrity = f"{pragma} found {len(found)}{'+' if len(found) == 20 else ''} errors"
        health.problems.append(" ".join(found[0].split()))
    _read_contents(conn.execute, health, (sqlite3.Error,))


def _read_contents(
    query: Query, health: StoreHealth, errors: tuple[type[BaseException], ...]
) -> None:
    """Schema revision and row counts, read with ``query``; ``errors`` are the
    driver's exceptions for a statement that fails."""
    try:
        rows = list(query("SELECT version_num FROM alembic_version"))
        health.revision = str(rows[0][0]) if rows else None
    except errors as exc:
        health.problems.append(f"no schema revision ({_first_line(exc)})")
        return
    _judge_revision(health)
    for table, _shown in COUNTED:
        try:
            (count,) = next(iter(query(f"SELECT count(*) FROM {table}")))
        except errors as exc:
            health.problems.append(f"table {table} cannot be read ({_first_line(exc)})")
            continue
        health.counts[table] = int(count)


def _judge_revision(health: StoreHealth) -> None:
    revision = health.revision
    if revision is None:
        health.problems.append("no schema revision: not a Sluice store, or one that lost it")
    elif revision > HEAD_REVISION:
        health.problems.append(
            f"schema {revision} is from a newer Sluice (this one knows up to {HEAD_REVISION})"
        )
    elif revision < HEAD_REVISION:
        health.notes.append(
            f"schema upgrade to {HEAD_REVISION} pending (done when the store is next opened, "
            "or by `sluice server database upgrade`)"
        )


def _check_postgresql(url: str) -> StoreHealth:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from sluice.errors import StoreError
    from sluice.store.database import database_label, open_engine

    health = StoreHealth(database_label(url))
    try:
        engine = open_engine(url)
    except StoreError as exc:
        health.problems.append(_first_line(exc))
        return health
    try:
        # Autocommit: a statement that fails (a missing table) must not abort the rest.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            checksums = conn.execute(text("SHOW data_checksums")).scalar()
            health.integrity = (
                "data checksums on (PostgreSQL verifies pages as it reads them)"
                if checksums == "on"
                else "data checksums off (PostgreSQL cannot detect damaged pages)"
            )
            _read_contents(lambda sql: conn.execute(text(sql)), health, (SQLAlchemyError,))
    except SQLAlchemyError as exc:
        health.problems.append(f"cannot be reached: {_first_line(exc)}")
    finally:
        engine.dispose()
    return health


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["COUNTED", "StoreHealth", "check_store", "wal_header_problem"]
