"""The embedded SQLite store on the standard library's :mod:`sqlite3` alone.

A process that only runs flows opens the store, makes sure of its schema and
writes batches of records. Importing SQLAlchemy for that would cost about
0.2 s, almost half of a hello-world flow's budget, so on SQLite those steps
run here, executing SQL text compiled ahead of time from the SQLAlchemy
definitions (:mod:`sluice.store.sqlite_sql`). SQLAlchemy is imported only for
reads (lazily, by the backend) and to upgrade a database from an older
schema revision with Alembic.

Connections are set up as the SQLAlchemy engine's are
(:mod:`sluice.store.database`): WAL (readers never block the writer),
``synchronous=NORMAL``, a short busy wait before our own retry loop takes
over, and transactions under our control (``isolation_level=None``) so that
writes start with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from itertools import chain
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote

from sluice.errors import StoreError
from sluice.store import sqlite_sql
from sluice.store.fencing import fenced
from sluice.store.retry import retry_when_busy, store_error
from sluice.store.revision import HEAD_REVISION, refuse_unversioned
from sluice.store.wal_checkpoint import WalCheckpointer
from sluice.store.write_groups import COLUMNS, ValueGroup

T = TypeVar("T")

#: longest single busy wait inside SQLite before our own retry loop takes over
_MAX_BUSY_WAIT = 1.0
_URL = re.compile(
    r"sqlite(?:\+(?P<driver>\w+))?://(?P<host>[^/?]*)(?:/(?P<database>[^?]*))?(?:\?(?P<query>.*))?",
    re.DOTALL,
)
_VERSION_TABLE = "alembic_version"
#: user tables, as SQLAlchemy's inspector lists them (SQLite's own are skipped)
_LIST_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"
)


# -- where the database is ------------------------------------------------------------


def sqlite_file(url: str) -> Path | None:
    """The database file a ``sqlite:///PATH`` URL names (resolved), or ``None`` for other URLs.

    Reads the URL as SQLAlchemy does (the path is percent-decoded, ``~`` is
    expanded), so both ways of opening the store reach the same file.

    Raises:
        StoreError: an in-memory database (the writer and the readers use
            separate connections, which would each see a different empty
            database), or a SQLite URL this store does not take.
    """
    scheme, separator, _ = url.partition("://")
    if not separator or scheme.partition("+")[0] != "sqlite":
        return None
    match = _URL.fullmatch(url)
    if match is None:
        _bad_url(url)
    database = unquote(match["database"] or "")
    query = match["query"] or ""
    if database in ("", ":memory:") or "mode=memory" in query.split("&"):
        raise StoreError(f"In-memory SQLite is not supported as a Sluice store ({url}); use a file")
    if match["driver"] not in (None, "pysqlite") or match["host"] or query:
        _bad_url(url)
    return Path(database).expanduser().resolve()


def _bad_url(url: str) -> NoReturn:
    raise StoreError(
        "Sluice's SQLite store takes a plain file URL, sqlite:///PATH (no host, options or"
        f" driver other than pysqlite), not {url!r}"
    )


def prepare_file(path: Path) -> None:
    """Create the folder of the database file ``path``.

    Raises:
        StoreError: the folder cannot be created, or ``path`` is a directory.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Cannot create the folder of the Sluice database {path}: {exc.strerror or exc}"
        ) from exc
    if path.is_dir():
        raise StoreError(f"The Sluice database path {path} is a directory, not a file")


# -- connections -----------------------------------------------------------------------


def busy_wait(lock_timeout: float) -> float:
    """The ``sqlite3`` timeout: SQLite's own busy wait, capped so our retries take over."""
    return max(0.0, min(lock_timeout, _MAX_BUSY_WAIT))


def configure(conn: Any) -> None:
    """Set a new ``sqlite3`` connection up for concurrent use (SQLAlchemy's too).

    Raises:
        sqlite3.Error: the file is not a database, or another process is
            switching it to WAL at this moment (busy: retry).
    """
    # Take transaction control away from the sqlite3 module: it would not
    # BEGIN before SELECTs nor let us choose IMMEDIATE.
    conn.isolation_level = None
    cursor = conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The default 2 MB page cache makes index updates of a growing store go
        # to disk pages again and again; 32 MB keeps the hot index pages.
        cursor.execute("PRAGMA cache_size=-32000")
    finally:
        cursor.close()


#: ``None`` adapts to itself through this empty dict's ``get``: a C method, so
#: a NULL costs no Python frame, as an adapter function would.
_NO_ADAPTATION: dict[Any, None] = {}


def bind_none_directly() -> None:
    """Let the ``sqlite3`` module bind ``None`` without searching for an adapter.

    It binds int, float and str as they are but sends every other value,
    ``None`` included, through its adapter protocol, whose search raises and
    discards an AttributeError when no adapter is registered: about half a
    microsecond per NULL, and a task call writes seven. An adapter that returns
    the value unchanged ends the search at once. Registration is process-wide,
    which changes nothing for other users of ``sqlite3``: ``None`` still
    binds as NULL. An adapter someone else registered is left in place.
    """
    if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
        sqlite3.register_adapter(type(None), _NO_ADAPTATION.get)


def connect(path: Path, *, lock_timeout: float) -> sqlite3.Connection:
    """A configured connection to ``path`` (the caller retries busy errors)."""
    bind_none_directly()
    conn = sqlite3.connect(
        path,
        timeout=busy_wait(lock_timeout),
        isolation_level=None,
        check_same_thread=False,
        # The writer's statements: each group's single- and many-row forms.
        cached_statements=256,
    )
    try:
        configure(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _statements() -> dict[str, str]:
    """Group name -> its generated SQL, which binds the group's values as they are.

    Raises:
        StoreError: the generated file is stale (regenerate it): it would bind
            values to the wrong columns.
    """
    found = {}
    for name, (sql, params) in sqlite_sql.WRITES.items():
        if params != COLUMNS[name]:
            raise StoreError(
                f"sluice/store/sqlite_sql.py is stale ({name} takes {params}, its rows hold "
                f"{COLUMNS[name]}): run python -m sluice.store.sqlite_sqlgen --write"
            )
        found[name] = sql
    return found


#: group name -> the SQL writing one row of it
_WRITES = _statements()


#: Most parameters one statement binds: SQLite's default limit before 3.32.
_MAX_PARAMETERS = 999


def _many_rows_sql(sql: str, width: int, rows: int | None = None) -> tuple[str, int] | None:
    """``sql`` inserting ``rows`` rows per statement (default: as many as the
    parameter limit allows).

    One statement for dozens of rows costs SQLite's VM and the sqlite3 module
    one step instead of one per row (and gives up the GIL once instead of once
    per row). ``None`` for statements that are not a single-row ``INSERT ...
    VALUES`` (updates), or when the limit allows fewer than two rows.
    """
    one_row = "(" + ", ".join("?" * width) + ")"
    head, found, tail = sql.partition(f"VALUES {one_row}")
    rows = rows or _MAX_PARAMETERS // width
    if not found or rows < 2 or rows * width > _MAX_PARAMETERS:
        return None
    return f"{head}VALUES {', '.join([one_row] * rows)}{tail}", rows


#: group name -> (SQL for many rows, rows it takes), for the groups that have one
_MANY_ROWS = {
    name: many
    for name, sql in _WRITES.items()
    if (many := _many_rows_sql(sql, len(COLUMNS[name]))) is not None
}

#: (group name, rows) -> SQL inserting that many rows: powers of two below the
#: full chunk, built when first needed (a handful per group, so the sqlite3
#: statement cache keeps them all prepared)
_FEW_ROWS: dict[tuple[str, int], str] = {}


def _few_rows_sql(name: str, rows: int) -> str:
    sql = _FEW_ROWS.get((name, rows))
    if sql is None:
        many = _many_rows_sql(_WRITES[name], len(COLUMNS[name]), rows)
        assert many is not None
        sql = _FEW_ROWS[(name, rows)] = many[0]
    return sql


def _execute_group(conn: sqlite3.Connection, name: str, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert one group's rows: full chunks through the many-rows statement, the
    rest in runs of 2**k rows (at most one statement per power of two), a last
    odd row alone.

    Small batches are the common case since the writer commits as soon as it is
    idle: a few dozen rows then take a few steps, not one step per row.
    """
    many = _MANY_ROWS.get(name)
    if many is None:
        conn.executemany(_WRITES[name], values)
        return
    sql, rows = many
    start = len(values) - len(values) % rows
    if start:
        conn.executemany(
            sql,
            [tuple(chain.from_iterable(values[i : i + rows])) for i in range(0, start, rows)],
        )
    left = len(values) - start
    size = 1 << (left.bit_length() - 1) if left else 0
    while size >= 2:
        if left >= size:
            conn.execute(
                _few_rows_sql(name, size), tuple(chain.from_iterable(values[start : start + size]))
            )
            start += size
            left -= size
        size >>= 1
    if left:
        conn.execute(_WRITES[name], values[start])


# -- fences -----------------------------------------------------------------------------


class _Lookups:
    """:class:`~sluice.store.fencing.FenceLookups` on a ``sqlite3`` connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _rows(self, sql: str, ids: list[str]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _MAX_PARAMETERS):
            chunk = ids[start : start + _MAX_PARAMETERS]
            marks = ", ".join("?" * len(chunk))
            found.extend(self._conn.execute(sql.format(marks), chunk).fetchall())
        return found

    def attempts(self, run_ids: list[str]) -> dict[str, int | None]:
        sql = "SELECT id, attempt FROM flow_run WHERE id IN ({})"
        return {rid: n for rid, n in self._rows(sql, run_ids)}

    def children(self, run_ids: list[str]) -> set[str]:
        sql = "SELECT id FROM flow_run WHERE parent_flow_run_id IN ({})"
        return {rid for (rid,) in self._rows(sql, run_ids)}

    def task_owners(self, task_ids: list[str]) -> dict[str, str | None]:
        sql = "SELECT id, flow_run_id FROM task_run WHERE id IN ({})"
        return {tid: owner for tid, owner in self._rows(sql, task_ids)}


# -- the store --------------------------------------------------------------------------


class SqliteStore:
    """One store file: schema made current on open, then one transaction per batch.

    It holds a single connection. Writes come from one thread at a time (the
    batcher's writer); a lock makes any other use safe rather than fast.

    With ``background_checkpoints``, commits never run a WAL checkpoint
    themselves: a :class:`~sluice.store.wal_checkpoint.WalCheckpointer` does,
    from its own thread (the embedded writer's commits stay short).

    Raises:
        StoreCorruptError: the file is not a (Sluice) database, naming its path.
        StoreError: the database cannot be opened, created or upgraded.
    """

    def __init__(
        self, path: Path, *, lock_timeout: float = 60.0, background_checkpoints: bool = False
    ) -> None:
        self.path = path
        #: what to call the database in messages
        self.label = str(path)
        self._lock_timeout = lock_timeout
        self._lock = threading.Lock()
        prepare_file(path)
        # Retried: the first connection to a brand-new file switches it to
        # WAL, which waits on any other process doing the same at that moment.
        self._conn = self._retrying(lambda: connect(path, lock_timeout=lock_timeout))
        try:
            self._ensure_schema()
        except BaseException:
            self._conn.close()
            raise
        self._checkpointer: WalCheckpointer | None = None
        if background_checkpoints:
            self._checkpointer = WalCheckpointer(path)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")

    def __repr__(self) -> str:
        return f"SqliteStore({self.label!r})"

    def write_values(self, groups: Sequence[ValueGroup]) -> set[str]:
        """Write groups (:mod:`sluice.store.write_groups`), in the order given, in one
        transaction, retried while another writer holds the file.

        Value tuples bind as they are, with no dict per row in between. The
        group ``fences`` holds ``(flow run id, attempt)`` pairs: the records of
        runs a later attempt took over are left out (see :mod:`sluice.store.fencing`).

        Returns:
            The fenced runs a later attempt took over (normally none).

        Raises:
            StoreError: still locked after ``lock_timeout``, or the write failed.
        """

        def work(conn: sqlite3.Connection) -> set[str]:
            todo, superseded = fenced(groups, _Lookups(conn))
            for name, values in todo:
                _execute_group(conn, name, values)
            return superseded

        with self._lock:
            superseded = self._retrying(lambda: self._transaction(work))
            checkpointer = self._checkpointer
            if checkpointer is not None:
                checkpointer.committed(sum(len(values) for _, values in groups))
                if checkpointer.failed:
                    # Back to SQLite's own checkpoints (its default threshold).
                    self._conn.execute("PRAGMA wal_autocheckpoint=1000")
                    self._checkpointer = None
        return superseded

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
            self._conn.close()

    # -- schema ------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Create the schema in a new database; upgrade an old one (with Alembic)."""
        revision = self._retrying(lambda: self._revision(self._conn))
        if revision is None:
            revision = self._retrying(lambda: self._transaction(self._create))
        if revision not in (None, HEAD_REVISION):
            self._upgrade()

    def _create(self, conn: sqlite3.Connection) -> str | None:
        """Create and stamp the schema, unless another process did meanwhile.

        Returns the revision found instead, or ``None`` once created.
        """
        # Checked again inside the write transaction: another process may
        # have created the store while this one waited for the lock.
        revision = self._revision(conn)
        if revision is not None:
            return revision
        existing = [name for (name,) in conn.execute(_LIST_TABLES)]
        refuse_unversioned(self.label, existing, sqlite_sql.TABLE_NAMES, whole_file=True)
        for statement in sqlite_sql.CREATE_SCHEMA:
            conn.execute(statement)
        return None

    @staticmethod
    def _revision(conn: sqlite3.Connection) -> str | None:
        """The revision in ``alembic_version``, or ``None`` for an unversioned database."""
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_VERSION_TABLE,)
        ).fetchone()
        if found is None:
            return None
        row = conn.execute(sqlite_sql.READ_REVISION).fetchone()
        return None if row is None else str(row[0])

    def _upgrade(self) -> None:
        # Rare (the first open after upgrading Sluice), so it may import
        # SQLAlchemy and Alembic, which own the migration history.
        from sluice.store.database import sqlite_engine
        from sluice.store.migrate import upgrade

        engine = sqlite_engine(self.path, lock_timeout=self._lock_timeout)
        try:
            upgrade(engine, lock_timeout=self._lock_timeout, label=self.label)
        finally:
            engine.dispose()

    # -- transactions -------------------------------------------------------------------

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` inside ``BEGIN IMMEDIATE`` .. ``COMMIT`` (rolled back if it raises).

        Taking the write lock up front matters: a deferred transaction that
        reads and then writes must upgrade its lock, and two processes doing
        that at once deadlock instead of waiting their turn.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                # The original error is the one worth reporting.
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return result

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()`` retried while the database is busy; driver errors become StoreError."""
        try:
            return retry_when_busy(attempt, lock_timeout=self._lock_timeout, label=self.label)
        except sqlite3.Error as exc:
            raise store_error(exc, self.label) from exc


__all__ = [
    "SqliteStore",
    "bind_none_directly",
    "busy_wait",
    "configure",
    "connect",
    "prepare_file",
    "sqlite_file",
]
