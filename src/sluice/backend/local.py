"""LocalBackend: the embedded store (SQLite or PostgreSQL) behind the Backend protocol.

Writes take a snapshot of the record on the caller's thread and go through a
:class:`~sluice.backend.batcher.WriteBehindBatcher`, which commits as soon as
it is idle (group commit); each batch becomes one database transaction.
Reads flush first, so a process always reads its own writes.

While the database is away (unreachable, its disk full) the writer retries
for ``store.retry_timeout`` seconds, then keeps records in a spool file
(:mod:`sluice.backend.spool`) that is written back when the database answers,
or by the next process that opens the store: here, in the constructor.

On SQLite, opening the store and writing use the standard library's sqlite3
alone (:class:`~sluice.store.sqlite_native.SqliteStore`): a process that only
runs flows never imports SQLAlchemy, about 0.2 s of a hello-world flow. Reads
go through the SQLAlchemy queries, on an engine created at the first read.
PostgreSQL uses SQLAlchemy for everything.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from sluice.backend.attempts import HeldAttempts
from sluice.backend.batcher import WriteBatch, WriteBehindBatcher, counts_in_words
from sluice.backend.local_deployments import LocalDeploymentsMixin
from sluice.backend.spool import Spool, replay_spools, spool_dir
from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)
from sluice.settings import Settings, load_settings
from sluice.store.fencing import FENCES, fence_row
from sluice.store.retry import driver_error, is_unavailable, retry_when_busy, store_error
from sluice.store.rows import (
    RowBatch,
    flow_row,
    flow_run_row,
    heartbeat_row,
    log_row,
    log_snapshot,
    log_values,
    state_row,
    state_snapshot,
    state_values,
    task_run_row,
    task_run_snapshot,
    task_run_values,
)
from sluice.store.sqlite_native import SqliteStore, ValueGroup, row_values, sqlite_file

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

T = TypeVar("T")

# Batcher item kinds. Runs and heartbeats are keyed by id (coalesced: the
# latest snapshot wins); flows, states and logs are appended.
_FLOW, _FLOW_RUN, _TASK_RUN, _STATE, _LOG, _HEARTBEAT = range(6)
_KIND_NAMES = ("flows", "flow runs", "task runs", "states", "log lines", "heartbeats")
#: producers ahead of the writer by this many records wait (back-pressure)
MAX_PENDING = 50_000


class LocalBackend(LocalDeploymentsMixin):
    """Record runs in the database at ``settings.resolved_database_url``.

    Deployments, work pools and claims: see :class:`LocalDeploymentsMixin`.

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
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        path = sqlite_file(self.url)
        self._sqlite: SqliteStore | None = None
        if path is not None:
            self._sqlite = SqliteStore(
                path, lock_timeout=self._lock_timeout, background_checkpoints=True
            )
            self._label = self._sqlite.label
            self._sink: Callable[[WriteBatch], None] = self._write_sqlite
        else:
            from sluice.store import open_store
            from sluice.store.database import database_label

            self._engine = open_store(self.url, lock_timeout=self._lock_timeout)
            self._label = database_label(self.url)
            self._sink = self._write_with_sqlalchemy
        self._spools = spool_dir(self.settings.home, self._label)
        self.replay_spools()
        self._spool = Spool(
            self._spools,
            self._label,
            lambda batch: self._fenced_rows(batch)[0],
            self._write_resent,
        )
        self._batcher = WriteBehindBatcher(
            self._sink,
            batch_size=self.settings.store.batch_size,
            flush_interval=self.settings.store.flush_interval,
            max_pending=MAX_PENDING,
            # While the database is away, producers may wait until the writer
            # keeps records in the spool (after retry_timeout), not fail first.
            stall_timeout=self._lock_timeout + self.settings.store.retry_timeout,
            outage=is_unavailable,
            retry_timeout=self.settings.store.retry_timeout,
            fallback=self._spool,
            describe=lambda counts: counts_in_words(counts, _KIND_NAMES),
        )
        self._put = self._batcher.put
        #: attempts this process holds: every batch is fenced with them
        self.attempts = HeldAttempts()
        self._settle = self._batcher.settle

    def __repr__(self) -> str:
        return f"LocalBackend({self._label!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine: reads, store-level tools (migrations), and PostgreSQL writes.

        On SQLite it is created on first use (thread-safe), importing
        SQLAlchemy then; the schema was made current when the backend opened.
        """
        engine = self._engine
        if engine is None:
            with self._engine_lock:
                engine = self._engine
                if engine is None:
                    from sluice.store.database import sqlite_engine

                    assert self._sqlite is not None  # only SQLite defers its engine
                    engine = sqlite_engine(self._sqlite.path, lock_timeout=self._lock_timeout)
                    self._engine = engine
        return engine

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._batcher.closed

    # -- writes ----------------------------------------------------------------

    def write_flow(self, flow: FlowRecord) -> None:
        """Register a flow by name (a flow already known by that name is kept)."""
        self._put((_FLOW, None, flow_row(flow)))

    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a flow run row and append ``state`` to its history."""
        self._put((_FLOW_RUN, run.id, flow_run_row(run)))
        if state is not None:
            self._put((_STATE, None, state_snapshot(state)))
            self._settle()

    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a task run row and append ``state`` to its history."""
        self._put((_TASK_RUN, run.id, task_run_snapshot(run)))
        if state is not None:
            self._put((_STATE, None, state_snapshot(state)))
            # A state change is where a lagging writer gets its turn (see settle).
            self._settle()

    def write_logs(self, logs: Sequence[LogRecord]) -> None:
        """Append log lines."""
        self._batcher.put_many([(_LOG, None, log_snapshot(record)) for record in logs])

    def heartbeat(self, flow_run_id: str, at: _dt.datetime) -> None:
        """Record that the process running ``flow_run_id`` is alive (never moves back)."""
        self._put((_HEARTBEAT, flow_run_id, at.timestamp()))

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
            with self._engine_lock:
                engine = self._engine
            if engine is not None:
                engine.dispose()

    def _write_sqlite(self, batch: WriteBatch) -> None:
        """The batcher's sink on SQLite: one batch, one transaction.

        Snapshots become parameter tuples directly (no row dicts), and nothing
        is sorted: SQLite has one writer at a time, so no lock order to keep.
        """
        assert self._sqlite is not None
        latest, appended = batch.latest, batch.appended
        groups: list[ValueGroup] = []
        if _FLOW in appended:
            groups.append(("flows", row_values("flows", appended[_FLOW])))
        if _FLOW_RUN in latest:
            groups.append(("flow_runs", row_values("flow_runs", latest[_FLOW_RUN].values())))
        if _TASK_RUN in latest:
            groups.append(("task_runs", list(map(task_run_values, latest[_TASK_RUN].values()))))
        if _STATE in appended:
            groups.append(("states", list(map(state_values, appended[_STATE]))))
        if _LOG in appended:
            groups.append(("logs", list(map(log_values, appended[_LOG]))))
        if _HEARTBEAT in latest:
            beats = [heartbeat_row(cast(str, k), at) for k, at in latest[_HEARTBEAT].items()]
            groups.append(("heartbeats", row_values("heartbeats", beats)))
        fences, sent_at = self.attempts.fences()
        if fences:
            groups.insert(0, (FENCES, fences))
        try:
            superseded = self._sqlite.write_values(groups)
        except UnicodeEncodeError:
            # Text the database cannot hold (a lone surrogate, say from a file
            # name decoded with surrogateescape) must not make the whole batch
            # fail forever: it is stored with U+FFFD in its place.
            fixed = [
                (name, [tuple(map(_text_fixed, row)) for row in values]) for name, values in groups
            ]
            superseded = self._sqlite.write_values(fixed)
        self.attempts.settle(fences, superseded, sent_at)

    def _write_with_sqlalchemy(self, batch: WriteBatch) -> None:
        """The batcher's sink on PostgreSQL: one batch, one transaction."""
        from sluice.store import writes
        from sluice.store.database import run_write

        rows, fences, sent_at = self._fenced_rows(batch)
        superseded = _with_text_fixed(
            lambda rows: run_write(
                self.engine,
                lambda conn: writes.write_batch(conn, rows),
                lock_timeout=self._lock_timeout,
                label=self._label,
            ),
            rows,
        )
        self.attempts.settle(fences, superseded, sent_at)

    def _fenced_rows(self, batch: WriteBatch) -> tuple[RowBatch, list[tuple[str, int]], float]:
        """The rows of ``batch`` fenced with the attempts this process holds, those
        attempts, and when they were read (a spooled batch keeps its fences, so a
        replay hours later is fenced too)."""
        rows = _rows_of(batch)
        fences, sent_at = self.attempts.fences()
        rows.fences = [fence_row(run_id, attempt) for run_id, attempt in fences]
        return rows, fences, sent_at

    def _write_resent(self, rows: RowBatch) -> None:
        """Write rows that may be stored already (a spool file's batch), in one
        transaction: runs upserted, states and log lines only where not held yet,
        nothing of a run a later attempt took over."""
        from sluice.store import dedup
        from sluice.store.database import run_write

        _with_text_fixed(
            lambda rows: run_write(
                self.engine,
                lambda conn: dedup.write_resent(conn, rows),
                lock_timeout=self._lock_timeout,
                label=self._label,
            ),
            rows,
        )

    # -- reads ---------------------------------------------------------------------

    def _read(self, query: Callable[[Connection], T]) -> T:
        """Flush, then run ``query`` on a connection, retried while the database is busy.

        The read methods import :mod:`sluice.store.queries` when called (after
        the first time, a dictionary lookup) because it imports SQLAlchemy,
        which a process that only writes never needs.
        """
        self._batcher.flush()
        engine = self.engine

        def attempt() -> T:
            with engine.connect() as conn:
                return query(conn)

        try:
            # WAL readers are rarely busy (only while another connection
            # recovers or resets the log); a retry beats an error then.
            return retry_when_busy(attempt, lock_timeout=self._lock_timeout, label=self._label)
        except Exception as exc:
            if driver_error(exc) is None:
                raise
            raise store_error(exc, self._label) from exc

    def read_flow(self, name: str) -> FlowRecord:
        """A flow by name (``my_flow`` and ``my-flow`` both match). Raises NotFoundError."""
        from sluice.store import queries

        return self._read(lambda conn: queries.get_flow(conn, name))

    def list_flows(self, limit: int = 200) -> list[FlowRecord]:
        """Flows, most recently created first."""
        from sluice.store import queries

        return self._read(lambda conn: queries.list_flows(conn, limit))

    def read_flow_run(self, run_id: str) -> FlowRunRecord:
        """A flow run by id or unique id prefix. Raises NotFoundError."""
        from sluice.store import queries

        return self._read(lambda conn: queries.get_flow_run(conn, run_id))

    def list_flow_runs(self, flt: FlowRunFilter) -> list[FlowRunRecord]:
        """Flow runs matching ``flt``, newest first."""
        from sluice.store import queries

        return self._read(lambda conn: queries.list_flow_runs(conn, flt))

    def count_flow_runs(self, flt: FlowRunFilter) -> int:
        """How many flow runs match ``flt`` (ignoring limit/offset)."""
        from sluice.store import queries

        return self._read(lambda conn: queries.count_flow_runs(conn, flt))

    def read_task_runs(self, flow_run_id: str) -> list[TaskRunRecord]:
        """Task runs of a flow run, in creation order."""
        from sluice.store import queries

        return self._read(lambda conn: queries.list_task_runs(conn, flow_run_id))

    def read_task_run(self, task_run_id: str) -> TaskRunRecord:
        """A task run by id or unique id prefix. Raises NotFoundError."""
        from sluice.store import queries

        return self._read(lambda conn: queries.get_task_run(conn, task_run_id))

    def read_states(self, run_id: str) -> list[StateRecord]:
        """The state history of a flow or task run, oldest first."""
        from sluice.store import queries

        return self._read(lambda conn: queries.list_states(conn, run_id))

    def find_cached_task_run(self, cache_key: str, now: _dt.datetime) -> TaskRunRecord | None:
        """The newest Completed task run with ``cache_key``, a stored result, and a cache
        expiration that is unset or later than ``now``; None when there is none."""
        from sluice.store import queries

        return self._read(lambda conn: queries.find_cached_task_run(conn, cache_key, now))

    def read_journal(self, flow_run_id: str) -> list[TaskRunRecord]:
        """Every Completed task run of a flow run that has a stored result, in creation order."""
        from sluice.store import queries

        return self._read(lambda conn: queries.list_journal(conn, flow_run_id))

    def mark_lapsed_runs_crashed(self, timeout: float) -> list[str]:
        """Mark Running flow runs silent for ``timeout`` seconds (on the database's
        clock) as Crashed, their unfinished task runs too, each with a state record
        saying why; the flow run ids marked.

        Pending writes (this process's heartbeats) are flushed first; the marking is
        one transaction, and safe to run from several processes at once.
        """
        from sluice.store import writes

        self._batcher.flush()
        return self._write_now(lambda conn: writes.mark_lapsed_runs_crashed(conn, timeout))

    def mark_gone_runs_crashed(self, runs: Sequence[FlowRunRecord]) -> list[str]:
        """Mark these Running flow runs Crashed, each only if it is still Running with the
        process it recorded (whose absence the caller saw); the ids marked."""
        from sluice.store import writes

        gone = [
            (r.id, r.host_id, r.pid, r.pid_started)
            for r in runs
            if r.host_id is not None and r.pid is not None and r.pid_started is not None
        ]
        if not gone:
            return []
        self._batcher.flush()
        return self._write_now(lambda conn: writes.mark_gone_runs_crashed(conn, gone))

    # -- attempts (see sluice.liveness) -------------------------------------------------

    def claim_attempt(self, flow_run_id: str) -> int:
        """Take the next attempt of a flow run for this process (one transaction); its
        number. Writes fenced with earlier attempts are refused from then on.

        Raises:
            NotFoundError: no such run.
        """
        from sluice.errors import NotFoundError
        from sluice.store import writes

        self._batcher.flush()
        attempt = self._write_now(lambda conn: writes.claim_attempt(conn, flow_run_id))
        if attempt is None:
            raise NotFoundError("flow run", flow_run_id)
        return attempt

    def hold_attempt(self, flow_run_id: str, attempt: int) -> None:
        """Fence every batch written from now on with ``attempt`` of ``flow_run_id``."""
        self.attempts.hold(flow_run_id, attempt)

    def release_attempt(self, flow_run_id: str) -> None:
        """Stop fencing batches for ``flow_run_id``."""
        self.attempts.release(flow_run_id)

    def attempt_lost(self, flow_run_id: str) -> bool:
        """Whether the store refused this process's writes for ``flow_run_id``."""
        return self.attempts.lost(flow_run_id)

    def attempt_confirmed_at(self, flow_run_id: str) -> float:
        """When (monotonic) a write last proved this process's attempt still held."""
        return self.attempts.confirmed_at(flow_run_id)

    def read_attempt(self, flow_run_id: str) -> int:
        """The run's stored attempt (0: never executed under fencing).

        Raises:
            NotFoundError: no such run.
        """
        from sluice.errors import NotFoundError
        from sluice.store import writes

        stored = self._read(lambda conn: writes.read_attempt(conn, flow_run_id))
        if stored is None:
            raise NotFoundError("flow run", flow_run_id)
        return stored

    def confirm_attempt(self, flow_run_id: str, attempt: int) -> bool:
        """Ask the store now whether ``attempt`` still holds ``flow_run_id``."""
        from sluice.liveness import is_superseded
        from sluice.store import writes

        self._batcher.flush()
        stored = self._read(lambda conn: writes.read_attempt(conn, flow_run_id))
        held = not is_superseded(attempt, stored)
        self.attempts.settle([(flow_run_id, attempt)], set() if held else {flow_run_id}, 0.0)
        return held

    def read_logs(
        self,
        flow_run_id: str,
        *,
        task_run_id: str | None = None,
        min_level: int = 0,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Logs of a flow run (and its task runs), oldest first."""
        from sluice.store import queries

        return self._read(
            lambda conn: queries.list_logs(
                conn,
                flow_run_id,
                task_run_id=task_run_id,
                min_level=min_level,
                offset=offset,
                limit=limit,
            )
        )


def _rows_of(batch: WriteBatch) -> RowBatch:
    """The table rows of a writer batch (for SQLAlchemy, and the spool file)."""
    latest, appended = batch.latest, batch.appended
    return RowBatch(
        flows=list(appended.get(_FLOW, [])),
        flow_runs=list(latest.get(_FLOW_RUN, {}).values()),
        task_runs=[task_run_row(s) for s in latest.get(_TASK_RUN, {}).values()],
        states=[state_row(s) for s in appended.get(_STATE, ())],
        logs=[log_row(s) for s in appended.get(_LOG, ())],
        heartbeats=[
            heartbeat_row(cast(str, run_id), at)
            for run_id, at in latest.get(_HEARTBEAT, {}).items()
        ],
    )


_LONE_SURROGATES = re.compile("[\ud800-\udfff]")


def _text_fixed(value: object) -> object:
    """Text without lone surrogates (U+FFFD instead); other values as they are."""
    return _LONE_SURROGATES.sub("\ufffd", value) if type(value) is str else value


def _with_text_fixed(write: Callable[[RowBatch], T], rows: RowBatch) -> T:
    """``write(rows)``; if the driver cannot encode some text (a lone surrogate),
    again with that text fixed (see :func:`_text_fixed`)."""
    try:
        return write(rows)
    except Exception as exc:
        if not _encoding_error(exc):
            raise
        fixed = {
            name: [{k: _text_fixed(v) for k, v in row.items()} for row in group]
            for name, group in vars(rows).items()
        }
        return write(RowBatch(**fixed))


def _encoding_error(exc: BaseException | None) -> bool:
    for _ in range(8):
        if exc is None:
            return False
        if isinstance(exc, UnicodeEncodeError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
