"""LocalBackend: the embedded store (SQLite or PostgreSQL) behind the Backend protocol.

Writes take a snapshot of the record on the caller's thread and go through a
:class:`~sluice.backend.batcher.WriteBehindBatcher` (see
:mod:`sluice.backend.record_writes`), which commits as soon as it is idle
(group commit); each batch becomes write groups
(:func:`~sluice.store.write_groups.write_groups`) and one database transaction.
Reads flush first, so a process always reads its own writes.

While the database is away (unreachable, its disk full) the writer retries
for ``store.retry_timeout`` seconds, then keeps records in a spool file
(:mod:`sluice.backend.spool`) that is written back when the database answers,
or by the next process that opens the store: here, in the constructor.

Operations (reads, deployments, claims ...) run with their one implementation
(:mod:`sluice.store.implementations`) in one read or write transaction, after
pending writes are flushed: :meth:`LocalBackend.execute`.

On SQLite, opening the store and writing use the standard library's sqlite3
alone (:class:`~sluice.store.sqlite_native.SqliteStore`): a process that only
runs flows never imports SQLAlchemy, about 0.2 s of a hello-world flow.
Operations go through SQLAlchemy, on an engine created at the first one.
PostgreSQL uses SQLAlchemy for everything.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from sluice.backend.attempts import HeldAttempts
from sluice.backend.batcher import WriteBatch, WriteBehindBatcher, counts_in_words
from sluice.backend.protocol import Backend
from sluice.backend.record_writes import RecordWrites
from sluice.backend.spool import Spool, replay_spools, spool_dir
from sluice.operations.base import Operation
from sluice.settings import Settings, load_settings
from sluice.store.handle import Database
from sluice.store.implementations import implementation_of
from sluice.store.retry import is_unavailable
from sluice.store.sqlite_native import SqliteStore, sqlite_file
from sluice.store.write_groups import KIND_NAMES, ValueGroup, batch_snapshots, write_groups

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from sluice.store.retention import Purged

T = TypeVar("T")

#: producers ahead of the writer by this many records wait (back-pressure)
MAX_PENDING = 50_000


class LocalBackend(RecordWrites, Backend):
    """Record runs in the database at ``settings.resolved_database_url``, and run
    operations on it.

    The database is opened (created or upgraded if needed) in the constructor,
    so a corrupt or unreachable database raises here.

    Records a process kept in a spool file while this database was away are
    written to it here (see :mod:`sluice.backend.spool`).

    Raises:
        StoreCorruptError: the file is not a usable Sluice store (names the path).
        StoreError: the database cannot be opened.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.url = self.settings.resolved_database_url
        self._lock_timeout = self.settings.store.lock_timeout
        path = sqlite_file(self.url)
        self._sqlite: SqliteStore | None = None
        engine: Engine | None = None  # on SQLite, made when an operation first needs it
        if path is not None:
            self._sqlite = SqliteStore(
                path, lock_timeout=self._lock_timeout, background_checkpoints=True
            )
            self._label = self._sqlite.label
            self._write_groups: Callable[[Sequence[ValueGroup]], set[str]] = (
                self._sqlite.write_values
            )
        else:
            from sluice.store import open_store
            from sluice.store.database import database_label

            engine = open_store(self.url, lock_timeout=self._lock_timeout)
            self._label = database_label(self.url)
            self._write_groups = self._write_with_sqlalchemy
        #: the database: operations, the server's UI reads and services
        self.database = Database(
            self.url, label=self._label, lock_timeout=self._lock_timeout, engine=engine
        )
        self._spools = spool_dir(self.settings.home, self._label)
        self.replay_spools()
        self._spool = Spool(self._spools, self._label, self._fenced_groups, self._write_resent)
        self._batcher = WriteBehindBatcher(
            self._write,
            batch_size=self.settings.store.batch_size,
            flush_interval=self.settings.store.flush_interval,
            max_pending=MAX_PENDING,
            # While the database is away, producers may wait until the writer
            # keeps records in the spool (after retry_timeout), not fail first.
            stall_timeout=self._lock_timeout + self.settings.store.retry_timeout,
            outage=is_unavailable,
            retry_timeout=self.settings.store.retry_timeout,
            fallback=self._spool,
            describe=lambda counts: counts_in_words(counts, KIND_NAMES),
        )
        self._put = self._batcher.put
        self._put_many = self._batcher.put_many
        self._settle = self._batcher.settle
        #: attempts this process holds: every batch is fenced with them
        self.attempts = HeldAttempts()

    def __repr__(self) -> str:
        return f"LocalBackend({self._label!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine: operations, store-level tools (migrations), and
        PostgreSQL writes (see :attr:`database`).

        On SQLite it is created on first use (thread-safe), importing
        SQLAlchemy then; the schema was made current when the backend opened.
        """
        return self.database.engine

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._batcher.closed

    # -- writes (the record writes themselves: see RecordWrites) ------------------

    def flush(self) -> None:
        """Make every write made so far durable: committed, or, when the database
        has been away for ``store.retry_timeout`` seconds, kept in the spool file.

        Raises:
            StoreError: the writer could not write them (they are kept and
                retried), or during an outage could not keep them in the spool either.
        """
        self._batcher.flush()

    @property
    def kept_aside(self) -> int:
        """How many records this process keeps in its spool file, not written to the
        database yet (0 unless the database has been away for ``store.retry_timeout``)."""
        return self._spool.records

    def replay_spools(self) -> None:
        """Write to the database the records other processes kept in spool files for
        it and left there (their process ended; see :func:`~sluice.backend.spool.replay_spools`).

        Done when the backend opens; a long-lived process (a worker) calls it when one
        of its children ended with records kept aside. A file the database cannot take
        yet stays, with a message.
        """
        replay_spools(self._spools, self._label, self._write_resent, is_unavailable)

    def close(self) -> None:
        """Flush, stop the writer and close the database connections.

        Records still kept in the spool file stay there (a message says where)
        for the next process that opens the store.

        Raises:
            StoreError: some records could be neither written nor kept (what
                was kept and what was lost).
        """
        try:
            self._batcher.close()
        finally:
            kept = self._spool.describe()
            if kept:
                print(f"sluice: {kept}", file=sys.stderr)
            self._spool.close()
            if self._sqlite is not None:
                self._sqlite.close()
            self.database.dispose()

    def _write(self, batch: WriteBatch) -> None:
        """The batcher's sink: one batch, its write groups fenced with the attempts this
        process holds, one transaction."""
        fences, sent_at = self.attempts.fences()
        groups = write_groups(batch_snapshots(batch), fences)
        superseded = _with_text_fixed(self._write_groups, groups)
        self.attempts.settle(fences, superseded, sent_at)

    def _write_with_sqlalchemy(self, groups: Sequence[ValueGroup]) -> set[str]:
        """Write groups in one transaction through SQLAlchemy (PostgreSQL)."""
        from sluice.store import writes
        from sluice.store.database import run_write

        return run_write(
            self.engine,
            lambda conn: writes.write_batch(conn, groups),
            lock_timeout=self._lock_timeout,
            label=self._label,
        )

    def _fenced_groups(self, batch: WriteBatch) -> list[ValueGroup]:
        """The write groups of ``batch`` fenced with the attempts this process holds now
        (a spooled batch keeps its fences, so a replay hours later is fenced too)."""
        return write_groups(batch_snapshots(batch), self.attempts.fences()[0])

    def _write_resent(self, groups: Sequence[ValueGroup]) -> None:
        """Write groups that may be stored already (a spool file's batch), in one
        transaction: runs upserted, states and log lines only where not held yet,
        nothing of a run a later attempt took over."""
        from sluice.store import dedup
        from sluice.store.database import run_write

        _with_text_fixed(
            lambda groups: run_write(
                self.engine,
                lambda conn: dedup.write_resent(conn, groups),
                lock_timeout=self._lock_timeout,
                label=self._label,
            ),
            groups,
        )

    # -- operations ------------------------------------------------------------------

    def execute(self, op: Operation[T]) -> T:
        """Flush pending writes, then run ``op``'s implementation in one transaction
        (a write transaction if it changes anything), retried while the database is
        busy; its answer.

        Raises:
            the errors ``op`` documents; StoreError: the database failed or stayed busy.
        """
        implementation = implementation_of(type(op))
        self._batcher.flush()

        def run(conn: Connection) -> T:
            answer: T = implementation.run(conn, op, self.settings)
            return answer

        return self.database.write(run) if implementation.writes else self.database.read(run)

    def prepare_reads(self) -> None:
        """Create the SQLAlchemy engine now (importing SQLAlchemy), not at the first read."""
        self.database.engine  # noqa: B018

    def read(self, query: Callable[[Connection], T]) -> T:
        """Flush, then ``query(conn)`` on a connection, retried while the database is busy:
        the server's views that are not operations (the UI's) read through this.

        Raises:
            StoreError: the database failed or stayed busy.
        """
        self._batcher.flush()
        return self.database.read(query)

    def delete_logs_before(self, cutoff: _dt.datetime) -> Purged:
        """Delete the log lines timestamped before ``cutoff``, a few hundred per
        transaction (see :mod:`sluice.store.retention`)."""
        from sluice.store.retention import delete_logs_before

        return delete_logs_before(self.database, cutoff)


_LONE_SURROGATES = re.compile("[\ud800-\udfff]")


def _text_fixed(value: object) -> object:
    """Text without lone surrogates (U+FFFD instead); other values as they are."""
    return _LONE_SURROGATES.sub("\ufffd", value) if type(value) is str else value


def _with_text_fixed(write: Callable[[Sequence[ValueGroup]], T], groups: Sequence[ValueGroup]) -> T:
    """``write(groups)``; if the driver cannot encode some text (a lone surrogate, say
    from a file name decoded with surrogateescape), again with that text fixed (see
    :func:`_text_fixed`): one such value must not make the whole batch fail forever."""
    try:
        return write(groups)
    except Exception as exc:
        if not _encoding_error(exc):
            raise
        fixed = [(name, [tuple(map(_text_fixed, row)) for row in rows]) for name, rows in groups]
        return write(fixed)


def _encoding_error(exc: BaseException | None) -> bool:
    for _ in range(8):
        if exc is None:
            return False
        if isinstance(exc, UnicodeEncodeError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
