"""A write-behind batcher: callers enqueue, one background thread writes batches.

Callers (engine threads) append ``(kind, key, payload)`` items to a deque,
which is thread-safe and costs a fraction of a microsecond; nothing else
happens on their thread unless the buffer is full. One writer thread wakes
when ``batch_size`` items are waiting or ``flush_interval`` has passed, drains
the deque into a :class:`WriteBatch` and hands it to the *sink* (for the
local backend: one database transaction).

Items with a key are coalesced: only the latest payload per ``(kind, key)``
is written (a task run's many state changes become one row upsert). Items
without a key (state history, logs) are all kept, in order.

Nothing is dropped silently. When the sink fails, the writer keeps the batch
and retries it with backoff, :meth:`WriteBehindBatcher.flush` raises
:class:`~sluice.errors.StoreError`, and :meth:`~WriteBehindBatcher.close`
reports what could not be written. Producers that outrun the writer by more
than ``max_pending`` items wait (back-pressure) instead of growing memory.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from sluice.errors import StoreError

#: kind of the internal flush marker items; sinks never see it
_MARKER = -1
#: attempts the writer makes at closing time before giving up on a failing batch
_CLOSING_ATTEMPTS = 3
_MAX_BACKOFF = 1.0

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

    def __bool__(self) -> bool:
        return self.size > 0


class _FlushWaiter:
    __slots__ = ("error", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None


class WriteBehindBatcher:
    """Buffer items and write them in batches from one background thread.

    Args:
        sink: writes one :class:`WriteBatch` (atomically) or raises.
        batch_size: items that wake the writer without waiting for the interval.
        flush_interval: longest an item waits before the writer picks it up, in seconds.
        max_pending: items buffered before :meth:`put` waits for the writer.
        stall_timeout: how long :meth:`put` waits on a *failing* writer before
            raising instead.
        name: the writer thread's name.
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
    ) -> None:
        self._sink = sink
        self._batch_size = max(1, batch_size)
        self._flush_interval = max(0.001, flush_interval)
        self._max_pending = max(self._batch_size, max_pending)
        self._stall_timeout = stall_timeout
        self._queue: deque[Item] = deque()
        self._wake = threading.Event()
        #: a producer has set ``_wake`` since the writer last cleared it
        self._wake_asked = False
        # True while the writer holds drained items not yet committed.
        self._busy = False
        self._closed = False
        self._stopping = False
        self._error: BaseException | None = None
        self._failures = 0
        self._unwritten: WriteBatch | None = None
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
        size = len(queue)
        if size >= self._batch_size and (not self._wake_asked or size > self._max_pending):
            self._on_full()

    def put_many(self, items: Iterable[Item]) -> None:
        """Enqueue several items at once (see :meth:`put`)."""
        if self._closed:
            raise StoreError("The store writer is closed; these records were not recorded")
        queue = self._queue
        queue.extend(items)
        if len(queue) >= self._batch_size:
            self._on_full()

    def _on_full(self) -> None:
        if not self._wake_asked:
            # A plain flag, not Event.is_set(): while the writer lags, every
            # put() finds the buffer full, and this check is all it pays.
            self._wake_asked = True
            self._wake.set()
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
            self._wake.set()
            time.sleep(0.002)

    def flush(self) -> None:
        """Block until everything enqueued before this call is written.

        Raises:
            StoreError: the writer failed to write them (they are kept and
                retried; a later flush succeeds once the cause is gone).
        """
        self._check_writer()
        if not self._queue and not self._busy:
            return
        waiter = _FlushWaiter()
        failures_before = self._failures
        self._queue.append((_MARKER, None, waiter))
        self._wake.set()
        while not waiter.event.wait(0.05):
            self._check_writer()
            if self._failures != failures_before:
                raise self._failure("records enqueued before flush() are not written yet")
        if waiter.error is not None:
            raise self._failure("records enqueued before flush() are not written yet", waiter.error)

    def close(self) -> None:
        """Write everything still buffered and stop the writer thread.

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
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._sweep_leftovers()
        if self._unwritten:
            count = self._unwritten.records()
            raise self._failure(f"{count} records could not be written and are lost")

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

    def _at_exit(self) -> None:
        if os.getpid() != self._pid:
            return
        try:
            self.close()
        except StoreError as exc:
            print(f"sluice: {exc}", file=sys.stderr)

    # -- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        pending = WriteBatch()
        backoff = 0.0
        closing_attempts = 0
        while True:
            if pending:
                # Retrying a failed batch: back off whatever wakes are asked
                # for, or producers blocked on a full buffer would spin us.
                time.sleep(backoff)
            elif not self._stopping:
                self._wake.wait(self._flush_interval)
            self._wake.clear()
            # Cleared before draining: an item put after the drain starts asks
            # for (and gets) another wake.
            self._wake_asked = False
            self._busy = True
            self._drain(pending)
            if not pending:
                self._release(pending.markers, None)
                pending.markers.clear()
                self._busy = False
                if self._stopping and not self._queue:
                    return
                continue
            if self._write(pending):
                pending = WriteBatch()
                backoff = 0.0
                self._busy = False
                if self._stopping and not self._queue:
                    return
                continue
            backoff = min(max(backoff * 2, 0.05), _MAX_BACKOFF)
            if self._stopping:
                closing_attempts += 1
                if closing_attempts >= _CLOSING_ATTEMPTS:
                    self._unwritten = pending
                    return

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

    def _write(self, batch: WriteBatch) -> bool:
        try:
            self._sink(batch)
        except Exception as exc:
            self._error = exc
            self._failures += 1
            # Waiting flushers learn of the failure; the records stay in the batch.
            self._release(batch.markers, exc)
            batch.markers.clear()
            return False
        self._error = None
        self._release(batch.markers, None)
        return True

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
        batch = self._unwritten or WriteBatch()
        while self._queue:
            kind, key, payload = self._queue.popleft()
            if kind == _MARKER:
                batch.markers.append(payload)
            else:
                batch.add(kind, key, payload)
        self._unwritten = None if self._write(batch) else batch
