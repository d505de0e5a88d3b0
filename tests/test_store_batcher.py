"""The write-behind batcher: coalescing, flushing, back-pressure, and failures that lose nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sluice.backend.batcher import WriteBatch, WriteBehindBatcher
from sluice.backend.local import LocalBackend
from sluice.backend.outage import OutageRules
from sluice.errors import StoreError
from sluice.schemas import LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings, StoreSettings
from sluice.states import Completed, Pending, Running

# -- the batcher on its own (a sink that keeps what it is given) ------------------------


class Outage(Exception):
    """What a sink raises while its store is away (the batcher is told it is transient)."""


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, Outage)


class ListSink:
    """Keeps every batch; fails while ``failing`` is set (``away``: with an Outage);
    can be slowed down."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[WriteBatch] = []
        self.failing = threading.Event()
        self.away = threading.Event()
        self.delay = delay
        #: when each batch was written
        self.written_at: list[float] = []
        #: batches handed to the sink so far (written or not)
        self.calls = 0

    def __call__(self, batch: WriteBatch) -> None:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.away.is_set():
            raise Outage("the database went away")
        if self.failing.is_set():
            raise RuntimeError("disk on fire")
        self.batches.append(batch)
        self.written_at.append(time.monotonic())

    def appended(self, kind: int) -> list[object]:
        return [p for b in self.batches for p in b.appended.get(kind, [])]


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def batcher(sink: ListSink) -> Iterator[WriteBehindBatcher]:
    instance = WriteBehindBatcher(sink, batch_size=100, flush_interval=0.05)
    yield instance
    instance.close()


def test_keyed_items_coalesce_and_appended_items_are_all_kept(
    batcher: WriteBehindBatcher, sink: ListSink
) -> None:
    for i in range(5):
        batcher.put((1, "run-a", f"a{i}"))
        batcher.put((2, None, i))
    batcher.put((1, "run-b", "b0"))
    batcher.flush()
    assert len(sink.batches) == 1
    assert sink.batches[0].latest == {1: {"run-a": "a4", "run-b": "b0"}}
    assert sink.appended(2) == [0, 1, 2, 3, 4]


def test_writer_wakes_after_the_flush_interval(batcher: WriteBehindBatcher, sink: ListSink) -> None:
    batcher.put((2, None, "x"))
    deadline = time.monotonic() + 5
    while not sink.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.appended(2) == ["x"]


def test_writer_wakes_when_a_batch_is_full(sink: ListSink) -> None:
    batcher = WriteBehindBatcher(sink, batch_size=10, flush_interval=60)
    try:
        batcher.put_many((2, None, i) for i in range(10))
        deadline = time.monotonic() + 5
        while not sink.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.appended(2) == list(range(10))
    finally:
        batcher.close()


def test_flush_with_nothing_pending_returns_at_once(batcher: WriteBehindBatcher) -> None:
    batcher.flush()
    started = time.perf_counter()
    for _ in range(1000):
        batcher.flush()
    assert time.perf_counter() - started < 0.5


def test_flush_from_many_threads(batcher: WriteBehindBatcher, sink: ListSink) -> None:
    def produce(n: int) -> None:
        for i in range(500):
            batcher.put((2, None, (n, i)))
        batcher.flush()
        # Everything this thread put is written once its flush returns.
        written = set(sink.appended(2))
        assert all((n, i) in written for i in range(500))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sink.appended(2)) == 4000


def test_producers_far_ahead_of_the_writer_wait(sink: ListSink) -> None:
    sink.delay = 0.02
    batcher = WriteBehindBatcher(sink, batch_size=100, flush_interval=0.01, max_pending=1000)
    try:
        peak = 0
        for i in range(20_000):
            batcher.put((2, None, i))
            peak = max(peak, len(batcher._queue))
        batcher.flush()
    finally:
        batcher.close()
    assert peak <= 1000 + 1
    assert max(b.size for b in sink.batches) <= 1000
    assert sink.appended(2) == list(range(20_000))


def test_failure_surfaces_on_flush_and_nothing_is_lost(sink: ListSink) -> None:
    batcher = WriteBehindBatcher(sink, batch_size=10, flush_interval=0.01)
    try:
        sink.failing.set()
        batcher.put_many((2, None, i) for i in range(50))
        with pytest.raises(StoreError, match="disk on fire"):
            batcher.flush()
        batcher.put_many((2, None, i) for i in range(50, 60))
        with pytest.raises(StoreError):
            batcher.flush()
        sink.failing.clear()
        batcher.flush()
        assert sorted(sink.appended(2)) == list(range(60))  # type: ignore[type-var]
    finally:
        batcher.close()


def test_close_reports_records_it_could_not_write(sink: ListSink) -> None:
    batcher = WriteBehindBatcher(sink, batch_size=10, flush_interval=0.01)
    sink.failing.set()
    batcher.put_many((2, None, i) for i in range(7))
    with pytest.raises(StoreError, match="not written, and lost: 7 records"):
        batcher.close()


def test_a_long_outage_pushes_back_on_producers(sink: ListSink) -> None:
    batcher = WriteBehindBatcher(
        sink, batch_size=10, flush_interval=0.01, max_pending=100, stall_timeout=0.3
    )
    sink.failing.set()
    try:
        with pytest.raises(StoreError, match="disk on fire"):
            for i in range(10_000):
                batcher.put((2, None, i))
    finally:
        sink.failing.clear()
        batcher.close()
    # Whatever was accepted before the error was written once the sink healed.
    assert sink.appended(2) == list(range(len(sink.appended(2))))
    assert len(sink.appended(2)) > 100


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def test_an_idle_writer_commits_at_once(sink: ListSink) -> None:
    # Group commit: no waiting for an interval or a full batch (both far away here).
    batcher = WriteBehindBatcher(sink, batch_size=10_000, flush_interval=60)
    try:
        for i in range(3):
            put_at = time.monotonic()
            batcher.put((2, None, i))
            _wait_until(lambda i=i: len(sink.appended(2)) == i + 1, "never written")
            assert sink.written_at[-1] - put_at < 5.0
    finally:
        batcher.close()


def test_batches_form_while_a_write_is_in_progress(sink: ListSink) -> None:
    sink.delay = 0.2
    batcher = WriteBehindBatcher(sink, batch_size=10_000, flush_interval=60)
    try:
        batcher.put((2, None, "first"))
        _wait_until(lambda: sink.calls == 1, "the writer never started")
        # While the first batch is being written, everything else piles up ...
        batcher.put_many((2, None, i) for i in range(500))
        batcher.flush()
        # ... and goes in the next transaction, not one transaction per item.
        assert [b.size for b in sink.batches] == [1, 500]
    finally:
        batcher.close()


def test_settle_waits_for_a_lagging_writer_once_per_batch(sink: ListSink) -> None:
    sink.delay = 0.1
    batcher = WriteBehindBatcher(sink)
    try:
        batcher.put((2, None, "x"))
        _wait_until(lambda: sink.calls == 1, "the writer never started")
        time.sleep(0.002)  # longer than SETTLE_AFTER: the writer lags
        started = time.monotonic()
        batcher.settle()  # gives the writer the interpreter lock for a while
        assert time.monotonic() - started >= 0.004
        started = time.monotonic()
        batcher.settle()  # once per batch: the next call does not wait again
        assert time.monotonic() - started < 0.004
        batcher.flush()
        started = time.monotonic()
        batcher.settle()  # nothing owed: a flag check
        assert time.monotonic() - started < 0.004
    finally:
        batcher.close()


class ListFallback:
    """Keeps batches in memory (the spool's role); ``failing``: cannot keep any."""

    def __init__(self, sink: ListSink) -> None:
        self.sink = sink
        self.kept: list[WriteBatch] = []
        self.failing = False
        self.restored = 0

    def keep(self, batch: WriteBatch, cause: BaseException | None) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        assert isinstance(cause, Outage)
        self.kept.append(batch)

    def restore(self) -> None:
        for batch in self.kept:
            self.sink(batch)
        self.restored += len(self.kept)
        self.kept = []

    def describe(self) -> str:
        return f"{len(self.kept)} batches in memory" if self.kept else ""


def _patient(sink: ListSink, fallback: ListFallback | None, retry_timeout: float):
    return WriteBehindBatcher(
        sink,
        outage=is_outage,
        retry_timeout=retry_timeout,
        fallback=fallback,
        describe=lambda counts: f"{sum(counts.values())} records",
    )


def test_an_outage_shorter_than_the_retry_timeout_is_waited_out(sink: ListSink) -> None:
    batcher = _patient(sink, None, retry_timeout=30)
    try:
        sink.away.set()
        batcher.put_many((2, None, i) for i in range(20))
        healer = threading.Timer(0.5, sink.away.clear)
        healer.start()
        started = time.monotonic()
        batcher.flush()  # no error: it waits for the store to come back
        assert time.monotonic() - started >= 0.4
        assert sink.appended(2) == list(range(20))
    finally:
        batcher.close()


def test_without_a_fallback_flush_names_what_is_pending_and_close_delivers_it(
    sink: ListSink,
) -> None:
    batcher = _patient(sink, None, retry_timeout=0.3)
    sink.away.set()
    batcher.put_many((2, None, i) for i in range(20))
    with pytest.raises(StoreError, match="not written yet: 20 records") as excinfo:
        batcher.flush()
    assert isinstance(excinfo.value.__cause__, Outage)
    sink.away.clear()
    batcher.close()  # still retrying: everything arrives
    assert sink.appended(2) == list(range(20))


def test_a_longer_outage_goes_to_the_fallback_and_back_in_order(sink: ListSink) -> None:
    fallback = ListFallback(sink)
    batcher = _patient(sink, fallback, retry_timeout=0.2)
    try:
        sink.away.set()
        batcher.put_many((2, None, i) for i in range(10))
        batcher.flush()  # kept aside after the retry timeout: no error
        assert [p for b in fallback.kept for p in b.appended[2]] == list(range(10))
        batcher.put_many((2, None, i) for i in range(10, 20))
        batcher.flush()  # the store still fails: these are kept aside too, after the others
        assert [p for b in fallback.kept for p in b.appended[2]] == list(range(20))
        assert sink.batches == []
        sink.away.clear()
        batcher.put_many((2, None, i) for i in range(20, 30))
        batcher.flush()
        # What was kept reached the store first, then the new records.
        assert sink.appended(2) == list(range(30))
        assert fallback.kept == []
    finally:
        batcher.close()


def test_what_was_kept_aside_goes_back_with_nothing_new_to_write(sink: ListSink) -> None:
    fallback = ListFallback(sink)
    batcher = _patient(sink, fallback, retry_timeout=0.2)
    try:
        sink.away.set()
        batcher.put_many((2, None, i) for i in range(10))
        batcher.flush()  # kept aside
        sink.away.clear()
        # A flush (a read's) with nothing new makes the writer write back what it
        # keeps, so the read that follows sees this process's own records.
        batcher.flush()
        assert sink.appended(2) == list(range(10))
        assert fallback.kept == []
        sink.away.set()
        batcher.put_many((2, None, i) for i in range(10, 20))
        batcher.flush()
        sink.away.clear()
        # An idle writer tries again on its own, too.
        deadline = time.monotonic() + 10
        while fallback.kept and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.appended(2) == list(range(20))
    finally:
        batcher.close()


def test_when_the_fallback_fails_too_close_says_what_is_lost(sink: ListSink) -> None:
    fallback = ListFallback(sink)
    fallback.failing = True
    batcher = _patient(sink, fallback, retry_timeout=0.1)
    sink.away.set()
    batcher.put_many((2, None, i) for i in range(7))
    with pytest.raises(StoreError, match="nor kept aside") as flushed:
        batcher.flush()
    assert "No space left on device" in str(flushed.value)
    with pytest.raises(StoreError, match="Not written, and lost: 7 records") as closed:
        batcher.close()
    assert "the database went away" in str(closed.value)
    assert "No space left on device" in str(closed.value)


def test_put_after_close_raises(sink: ListSink) -> None:
    batcher = WriteBehindBatcher(sink)
    batcher.close()
    with pytest.raises(StoreError, match="closed"):
        batcher.put((2, None, 1))
    with pytest.raises(StoreError, match="closed"):
        batcher.flush()
    batcher.close()  # idempotent


# -- through the local backend, on a real SQLite file -------------------------------------


def _backend(tmp_path: Path, **store: float) -> LocalBackend:
    settings = Settings(home=tmp_path, store=StoreSettings(**store))  # type: ignore[arg-type]
    return LocalBackend(settings)


def _count(backend: LocalBackend, table: str) -> int:
    with backend.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def test_one_hundred_thousand_records_are_all_stored(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    try:
        flow_run_id = new_id()
        running = Running()
        for i in range(50_000):
            run = TaskRunRecord(id=new_id(), task_name="t", name=f"t-{i}", flow_run_id=flow_run_id)
            run.apply(running)
            backend.write_task_run(run, StateRecord.from_state(run.id, "task", running))
        backend.flush()
        assert _count(backend, "task_run") == 50_000
        assert _count(backend, "run_state") == 50_000
    finally:
        backend.close()


def test_locked_database_fails_flush_then_everything_lands(tmp_path: Path) -> None:
    backend = _backend(tmp_path, lock_timeout=0.3, flush_interval=0.01)
    holder = sqlite3.connect(tmp_path / "sluice.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer that never lets go
        runs = [TaskRunRecord(id=new_id(), task_name="t", name=f"t-{i}") for i in range(300)]
        for run in runs:
            for state in (Pending(), Running(), Completed()):
                run.apply(state)
                backend.write_task_run(run, StateRecord.from_state(run.id, "task", state))
        backend.write_logs([LogRecord(None, runs[0].id, 20, "t", "hi", runs[0].created)])
        with pytest.raises(StoreError, match="locked"):
            backend.flush()
        holder.execute("ROLLBACK")
        backend.flush()
        assert _count(backend, "task_run") == 300
        assert _count(backend, "run_state") == 900
        assert _count(backend, "log") == 1
        assert backend.read_task_run(runs[7].id).state_name == "Completed"
    finally:
        holder.close()
        backend.close()


# -- the outage rules on their own (pure: the time is passed in) ---------------------------


def test_an_outage_is_waited_out_for_the_retry_timeout_then_kept_aside() -> None:
    rules = OutageRules(retry_timeout=10.0, has_fallback=True)
    rules.failed(100.0, transient=True, stopping=False)
    rules.failed(105.0, transient=True, stopping=False)
    assert rules.since == 100.0 and rules.seconds(105.0) == 5.0
    assert not rules.keep_aside(109.9, transient=True, stopping=False)
    assert rules.keep_aside(110.0, transient=True, stopping=False)
    assert not rules.flush_gives_up(1000.0, transient=True)  # the fallback answers it
    rules.recovered()
    assert rules.seconds(200.0) == 0.0


def test_without_a_fallback_flushes_give_up_and_close_waits_the_retry_timeout_again() -> None:
    rules = OutageRules(retry_timeout=10.0, has_fallback=False)
    rules.failed(0.0, transient=True, stopping=False)
    assert not rules.keep_aside(50.0, transient=True, stopping=False)
    assert not rules.flush_gives_up(9.0, transient=True)
    assert rules.flush_gives_up(10.0, transient=True)
    for now in (60.0, 61.0, 62.0):
        rules.failed(now, transient=True, stopping=True)
    assert not rules.give_up_at_close(69.0, stop_started=60.0, transient=True, keep_failed=False)
    assert rules.give_up_at_close(70.0, stop_started=60.0, transient=True, keep_failed=False)


def test_other_failures_surface_at_once_and_at_close_are_kept_aside_not_dropped() -> None:
    rules = OutageRules(retry_timeout=10.0, has_fallback=True)
    assert rules.flush_gives_up(0.0, transient=False)
    rules.failed(0.0, transient=False, stopping=True)
    rules.failed(0.1, transient=False, stopping=True)
    assert not rules.keep_aside(0.1, transient=False, stopping=True)
    assert not rules.give_up_at_close(0.1, 0.0, transient=False, keep_failed=False)
    rules.failed(0.2, transient=False, stopping=True)
    assert rules.keep_aside(0.2, transient=False, stopping=True)
    # Kept aside failed too: nothing better can happen, the writer stops.
    assert rules.give_up_at_close(0.2, 0.0, transient=True, keep_failed=True)
