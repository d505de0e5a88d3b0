"""A write-behind batcher: callers enqueue, one background thread writes batches.

Callers (engine threads) append ``(kind, key, payload)`` items to a deque,
which is thread-safe and costs a fraction of a microsecond; nothing else
happens on their thread unless the writer is idle or the buffer is full. One
writer thread drains the deque into a :class:`WriteBatch` and hands it to
the *sink* (for the local backend: one database transaction).

**Group commit.** The writer commits as soon as it is idle: while it waits,
the first item put wakes it; while it writes, items pile up and the next
batch takes them all. A record is durable about one transaction after it was
put, and a busy producer pays for a wake-up only when the writer has nothing
to do (a flag check otherwise). With ``group_commit=False`` (client mode,
where a batch is an HTTP request) the writer instead wakes when
``batch_size`` items wait or ``flush_interval`` has passed.

Items with a key are coalesced: only the latest payload per ``(kind, key)``
is written (a task run's many state changes become one row upsert). Items
without a key (state history, logs) are all kept, in order.

**Nothing is dropped silently.** When the sink fails, the writer keeps the
batch and retries it with backoff. Failures the ``outage`` predicate calls
transient (the database or server is away) are retried patiently: flushes
wait, for up to ``retry_timeout`` seconds. After that a *fallback* (the
local backend's spool file), if given, keeps the records durably and they
are written back, first, once the store answers again; without one, a
flush raises and says what is still pending while the writer keeps trying.
Other failures surface on the next flush at once. :meth:`close` says what
could not be written. Producers that outrun the writer by more than
``max_pending`` items wait (back-pressure) instead of growing memory.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol

from sluice.backend.outage import MAX_BACKOFF, MAX_PROBE_DELAY, OutageRules, next_delay
from sluice.errors import StoreError

#: kind of the internal flush marker items; sinks never see it
_MARKER = -1
#: a batch being written for longer than this makes a settling producer wait for it
SETTLE_AFTER = 0.001
#: longest a producer waits in settle()
_MAX_SETTLE = 0.005

Item = tuple[int, Hashable, Any]


class WriteBatch:
    """What the sink receives: coalesced payloads by kind, and appended ones in order."""

    __slots__ = ("appended", "latest", "markers", "size")

    def __init__(self) -> None:
        #: kind -> key -> latest payload (in first-seen key order)
        self.latest: dict[int, dict[Hashable, Any]] = {}
        #: kind -> every payload, in enqueue order
        self.appended: dict[int, list[Any]] = {}
        self.markers: list[_FlushWaiter] = []
        #: items added (before coalescing)
        self.size = 0

    def add(self, kind: int, key: Hashable, payload: Any) -> None:
        """Add one item: keyed items replace the previous payload of their key."""
        if key is None:
            bucket = self.appended.get(kind)
            if bucket is None:
                bucket = self.appended[kind] = []
            bucket.append(payload)
        else:
            latest = self.latest.get(kind)
            if latest is None:
                latest = self.latest[kind] = {}
            latest[key] = payload
        self.size += 1

    def records(self) -> int:
        """How many records the batch will write (after coalescing)."""
        return sum(map(len, self.latest.values())) + sum(map(len, self.appended.values()))

    def counts(self) -> Counter[int]:
        """Records by kind (after coalescing). Safe to call from another thread."""
        counts: Counter[int] = Counter()
        for group in (self.latest, self.appended):
            for kind, entries in list(group.items()):
                counts[kind] += len(entries)
        return counts

    def __bool__(self) -> bool:
        return self.size > 0


class Fallback(Protocol):
    """Where records go while the store stays unreachable: kept durably, written back later."""

    def keep(self, batch: WriteBatch, cause: BaseException | None) -> None:
        """Make ``batch`` durable (raises when it cannot; then nothing of it is kept).
        ``cause``: why the store did not take it."""

    def restore(self) -> None:
        """Write everything kept so far to the store, in order, then forget it (raises
        when the store still fails; what is kept stays kept)."""

    def describe(self) -> str:
        """What is kept and where, for messages (empty when nothing is kept)."""


class _FlushWaiter:
    __slots__ = ("error", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None


def _never(_exc: BaseException) -> bool:
    return False


def _count_text(counts: Counter[int]) -> str:
    return f"{sum(counts.values())} records"


def counts_in_words(counts: Counter[int], names: Sequence[str]) -> str:
    """Record counts by kind in words: ``"1 flow run, 40 task runs, 120 states"``.

    ``names[kind]`` is the plural name of a kind; a count of one drops the "s".
    """
    parts = []
    for kind, name in enumerate(names):
        count = counts.get(kind, 0)
        if count:
            parts.append(f"{count} {name[:-1] if count == 1 else name}")
    return ", ".join(parts) or "0 records"


class WriteBehindBatcher:
    """Buffer items and write them in batches from one background thread.

    Args:
        sink: writes one :class:`WriteBatch` (atomically) or raises.
        batch_size: without group commit, items that wake the writer before the interval.
        flush_interval: without group commit, longest an item waits before the
            writer picks it up, in seconds (with it, only a safety net).
        max_pending: items buffered before :meth:`put` waits for the writer.
        stall_timeout: how long :meth:`put` waits on a *failing* writer before
            raising instead.
        name: the writer thread's name.
        group_commit: write as soon as the writer is idle (see the module docstring).
        outage: tells a transient failure (the store is away) from others.
        retry_timeout: seconds an outage is waited out before flushes give up
            (or, with a fallback, before records go to it).
        fallback: keeps records durably when the outage lasts longer.
        describe: words record counts by kind for messages (``{kind: count}``).
    """

    def __init__(
        self,
        sink: Callable[[WriteBatch], None],
        *,
        batch_size: int = 2000,
        flush_interval: float = 0.5,
        max_pending: int = 50_000,
        stall_timeout: float = 60.0,
        name: str = "sluice-store-writer",
        group_commit: bool = True,
        outage: Callable[[BaseException], bool] = _never,
        retry_timeout: float = 0.0,
        fallback: Fallback | None = None,
        describe: Callable[[Counter[int]], str] = _count_text,
    ) -> None:
        self._sink = sink
        self._batch_size = max(1, batch_size)
        self._flush_interval = max(0.001, flush_interval)
        self._max_pending = max(self._batch_size, max_pending)
        self._stall_timeout = stall_timeout
        self._group_commit = group_commit
        #: queue length at which put() calls _on_full (wake-up or back-pressure)
        self._full_at = self._max_pending + 1 if group_commit else self._batch_size
        self._is_outage = outage
        self._rules = OutageRules(max(0.0, retry_timeout), has_fallback=fallback is not None)
        self._fallback = fallback
        self._describe = describe
        self._queue: deque[Item] = deque()
        # A lock used as a doorbell: the writer waits to acquire it, a ring
        # releases it. Cheaper than threading.Event, whose set() is Python code.
        self._bell = threading.Lock()
        self._bell.acquire()
        #: the writer waits for work (group commit): the next put rings
        self._idle = False
        #: a producer has rung since the writer last woke (interval mode)
        self._wake_asked = False
        # True while the writer holds drained items not yet committed.
        self._busy = False
        self._closed = False
        self._stopping = False
        self._stop_started = 0.0
        self._error: BaseException | None = None
        self._failures = 0
        #: the fallback holds records not yet written back
        self._kept = False
        self._keep_error: BaseException | None = None
        self._next_probe = 0.0
        self._probe_delay = 0.0
        self._pending = WriteBatch()
        self._unwritten: WriteBatch | None = None
        #: since when the writer owes a commit: woken for new items, or writing
        #: a batch (0.0: idle, or retrying a failed batch)
        self._busy_since = 0.0
        #: the batch a producer already settled for (its _busy_since)
        self._settled_for = 0.0
        self._settle_asked = False
        self._committed = threading.Event()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        # The thread is a daemon (a non-daemon one would block interpreter
        # exit before atexit runs); atexit then flushes what is left.
        atexit.register(self._at_exit)

    # -- producer side ---------------------------------------------------------

    def put(self, item: Item) -> None:
        """Enqueue ``(kind, key, payload)``; ``key=None`` means never coalesce.

        Raises:
            StoreError: the batcher is closed, or the writer has been failing
                for longer than ``stall_timeout`` while the buffer is full.
        """
        if self._closed:
            raise StoreError("The store writer is closed; this record was not recorded")
        queue = self._queue
        queue.append(item)
        if self._idle:
            self._wake_idle_writer()
        if len(queue) >= self._full_at:
            self._on_full()

    def put_many(self, items: Iterable[Item]) -> None:
        """Enqueue several items at once (see :meth:`put`)."""
        if self._closed:
            raise StoreError("The store writer is closed; these records were not recorded")
        queue = self._queue
        queue.extend(items)
        if self._idle:
            self._wake_idle_writer()
        if len(queue) >= self._full_at:
            self._on_full()

    def _wake_idle_writer(self) -> None:
        self._idle = False
        # From now on the writer owes a commit: settle() measures its lag from here.
        self._busy_since = time.monotonic()
        self._ring()

    def _ring(self) -> None:
        # try/except, not contextlib.suppress: producers ring an idle writer
        # once per wake-up, and a context manager costs several times more.
        try:  # noqa: SIM105
            self._bell.release()
        except RuntimeError:
            pass  # rung already and not answered yet: one ring is enough

    def _on_full(self) -> None:
        if not self._wake_asked:
            # A plain flag: while the writer lags, every put() finds the
            # buffer full, and this check is all it pays.
            self._wake_asked = True
            self._ring()
        if len(self._queue) > self._max_pending:
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        stalled_since: float | None = None
        while len(self._queue) > self._max_pending:
            self._check_writer()
            if self._error is None:
                stalled_since = None
            elif stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > self._stall_timeout:
                raise self._failure(f"{len(self._queue)} records are waiting")
            self._ring()
            time.sleep(0.002)

    def settle(self) -> None:
        """Give a lagging writer the interpreter lock until its batch is written.

        A producer that never blocks (a loop of short pure-Python tasks) leaves
        the writer the interpreter lock only once per switch interval (5 ms),
        and the writer needs it to wake up and again after every SQLite step:
        a commit would trail by tens of milliseconds. Producers call this when
        a run changes state: once the writer has owed a commit for longer than
        :data:`SETTLE_AFTER`, one of them waits (briefly, once per batch) for
        it. A flag check when the writer keeps up.
        """
        since = self._busy_since
        if not since or since == self._settled_for or self._error is not None:
            return
        if time.monotonic() - since < SETTLE_AFTER:
            return
        self._settled_for = since
        committed = self._committed
        self._settle_asked = True
        if self._busy_since == since:
            committed.wait(_MAX_SETTLE)

    def flush(self) -> None:
        """Block until everything enqueued before this call is written (or, during a
        long outage, kept by the fallback).

        Raises:
            StoreError: the writer failed to write them (they are kept and
                retried; a later flush succeeds once the cause is gone). During
                an outage, only after ``retry_timeout`` seconds, and only
                without a fallback or when the fallback fails too.
        """
        self._check_writer()
        if not self._queue and not self._busy and not self._kept:
            return
        waiter = _FlushWaiter()
        failures_before = self._failures
        started = time.monotonic()
        self._queue.append((_MARKER, None, waiter))
        self._ring()
        while not waiter.event.wait(0.05):
            self._check_writer()
            error = self._error
            if error is None or self._failures == failures_before:
                continue
            transient = self._is_outage(error)
            if self._rules.flush_gives_up(time.monotonic() - started, transient):
                what = "not written yet: " + self.pending_text() if transient else ""
                raise self._failure(what or "records enqueued before flush() are not written yet")
        if waiter.error is not None:
            raise self._failure("records enqueued before flush() are not written yet", waiter.error)

    def pending_text(self) -> str:
        """The records not written yet, in words ("12 task runs, 30 states")."""
        return self._describe(self.pending_counts())

    def pending_counts(self) -> Counter[int]:
        """Records not written yet, by kind (queued items counted before coalescing)."""
        counts = self._pending.counts()
        for kind, _key, _payload in list(self._queue):
            if kind != _MARKER:
                counts[kind] += 1
        return counts

    @property
    def outage_seconds(self) -> float:
        """How long the store has been failing with transient errors (0 when it answers)."""
        return self._rules.seconds(time.monotonic())

    def close(self) -> None:
        """Write everything still buffered and stop the writer thread.

        During an outage it waits as :meth:`flush` does: with a fallback until
        the records are kept there, without one up to ``retry_timeout`` seconds.

        Raises:
            StoreError: some records could not be written (their count and the cause).
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        if os.getpid() != self._pid or not self._thread.is_alive():
            # A forked child's copy has no writer thread; its buffer belongs
            # to the parent. A dead writer already lost its batch to a bug.
            return
        self._stop_started = time.monotonic()
        self._stopping = True
        self._ring()
        self._thread.join()
        self._sweep_leftovers()
        if self._unwritten:
            raise self._lost_error(self._unwritten)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _check_writer(self) -> None:
        if self._closed:
            raise StoreError("The store writer is closed")
        if os.getpid() != self._pid:
            raise StoreError(
                "This store writer belongs to the parent process; get a new backend after fork"
            )
        if not self._thread.is_alive():
            raise StoreError("The store writer thread has stopped unexpectedly")

    def _failure(self, what: str, error: BaseException | None = None) -> StoreError:
        error = error or self._error
        if isinstance(error, StoreError):
            message = f"{error} ({what})"
        else:
            message = f"Writing to the store failed: {error!r} ({what})"
        exc = StoreError(message)
        exc.__cause__ = error
        return exc

    def _lost_error(self, batch: WriteBatch) -> StoreError:
        lost = self._describe(batch.counts())
        if self._keep_error is None:
            return self._failure(f"not written, and lost: {lost}")
        fallback = self._fallback
        kept = fallback.describe() if fallback is not None else ""
        exc = StoreError(
            f"Not written, and lost: {lost}. Writing to the store failed ({self._error}) "
            f"and so did keeping the records aside ({self._keep_error})"
            + (f". Kept earlier, and not lost: {kept}" if kept else "")
        )
        exc.__cause__ = self._error
        return exc

    def _at_exit(self) -> None:
        if os.getpid() != self._pid:
            return
        try:
            self.close()
        except StoreError as exc:
            print(f"sluice: {exc}", file=sys.stderr)

    # -- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            if self._pending:
                # Retrying a failed batch: back off, whatever producers ask
                # (a flush or close rings to cut the pause short).
                self._bell.acquire(timeout=backoff)
            else:
                self._wait_for_work()
            # Cleared before draining: an item put after the drain starts asks
            # for (and gets) another wake.
            self._wake_asked = False
            self._busy = True
            self._drain(self._pending)
            if self._write_pending():
                backoff = 0.0
                self._busy = False
                if self._stopping and not self._queue:
                    return
                continue
            backoff = next_delay(backoff, 0.05, MAX_BACKOFF)
            if self._stopping and self._give_up():
                self._unwritten = self._pending
                return

    def _wait_for_work(self) -> None:
        if self._stopping:
            return
        if not self._group_commit:
            self._bell.acquire(timeout=self._flush_interval)
            return
        if self._queue:
            return
        self._let_settlers_go()
        self._idle = True
        # Looked at again after saying so: an item put before the flag was
        # visible is seen here, one put after it rings.
        if not self._queue:
            self._bell.acquire(timeout=self._flush_interval)
        self._idle = False

    def _drain(self, batch: WriteBatch) -> None:
        # While failing, keep at most max_pending items in the batch so a long
        # outage pushes back on producers instead of filling memory.
        room = self._max_pending - batch.size if self._error is not None else self._max_pending
        pop = self._queue.popleft
        add = batch.add
        for _ in range(max(room, 0)):
            try:
                kind, key, payload = pop()
            except IndexError:
                return
            if kind == _MARKER:
                batch.markers.append(payload)
            else:
                add(kind, key, payload)

    def _write_pending(self) -> bool:
        """Write the pending batch (or keep it aside); True when it is done with."""
        batch = self._pending
        now = time.monotonic()
        if not batch:
            if self._kept:
                # Nothing new, but what the fallback keeps goes back as soon as the
                # store answers (a flush asks now: a read after it must see it).
                self._restore(now, urgent=bool(batch.markers))
            self._done(batch)
            return True
        if self._kept and not self._restore(now, urgent=bool(batch.markers) or self._stopping):
            # What the fallback holds is older: it reaches the store first.
            return self._keep(batch)
        self._busy_since = self._busy_since or now
        try:
            self._sink(batch)
        except Exception as exc:
            return self._on_failure(batch, exc, now)
        finally:
            self._let_settlers_go()
        self._error = None
        self._rules.recovered()
        self._done(batch)
        return True

    def _done(self, batch: WriteBatch) -> None:
        self._let_settlers_go()
        self._release(batch.markers, None)
        self._pending = WriteBatch()

    def _let_settlers_go(self) -> None:
        self._busy_since = 0.0
        if self._settle_asked:
            self._settle_asked = False
            committed, self._committed = self._committed, threading.Event()
            committed.set()

    def _on_failure(self, batch: WriteBatch, exc: Exception, now: float) -> bool:
        self._error = exc
        self._failures += 1
        transient = self._is_outage(exc)
        self._rules.failed(now, transient, self._stopping)
        if not transient:
            # Waiting flushers learn of the failure; the records stay in the batch.
            self._release(batch.markers, exc)
            batch.markers.clear()
        # During an outage flushers keep waiting: their records are written once
        # the store is back, or kept aside, or their own patience runs out.
        if self._rules.keep_aside(now, transient, self._stopping):
            return self._keep(batch)
        return False

    def _keep(self, batch: WriteBatch) -> bool:
        """Hand ``batch`` to the fallback; on failure its flushers learn why."""
        assert self._fallback is not None
        try:
            self._fallback.keep(batch, self._error)
        except Exception as exc:
            self._keep_error = exc
            error = StoreError(
                f"Not written ({self._error}) nor kept aside ({exc}): "
                f"{self._describe(batch.counts())}; held in memory and retried"
            )
            error.__cause__ = exc
            self._release(batch.markers, error)
            batch.markers.clear()
            return False
        self._keep_error = None
        if not self._kept:
            self._kept = True
            self._probe_delay = 0.0
            self._next_probe = time.monotonic()
        self._done(batch)
        return True

    def _restore(self, now: float, urgent: bool) -> bool:
        """Try to write back what the fallback keeps (at most every few seconds,
        at once for a flush or at close); True when nothing is kept any more."""
        assert self._fallback is not None
        if not urgent and now < self._next_probe:
            return False
        try:
            self._fallback.restore()
        except Exception as exc:
            self._error = exc
            self._probe_delay = next_delay(self._probe_delay, 0.1, MAX_PROBE_DELAY)
            self._next_probe = now + self._probe_delay
            return False
        self._kept = False
        self._error = None
        self._rules.recovered()
        return True

    def _give_up(self) -> bool:
        """At close, after a failed attempt: stop trying (the batch is then unwritten)?"""
        error = self._error
        return self._rules.give_up_at_close(
            time.monotonic(),
            self._stop_started,
            transient=error is not None and self._is_outage(error),
            keep_failed=self._keep_error is not None,
        )

    @staticmethod
    def _release(markers: list[_FlushWaiter], error: BaseException | None) -> None:
        for waiter in markers:
            waiter.error = error
            waiter.event.set()

    def _sweep_leftovers(self) -> None:
        # A put() that raced close() may have appended after the writer's last
        # drain; write it here rather than lose it.
        if not self._queue:
            return
        self._pending = self._unwritten or WriteBatch()
        self._drain(self._pending)
        written = self._write_pending()
        if not written and self._fallback is not None and self._keep_error is None:
            written = self._keep(self._pending)
        self._unwritten = None if written else self._pending
