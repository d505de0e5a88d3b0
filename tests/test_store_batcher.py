"""The write-behind batcher: coalescing, flushing, back-pressure, and failures that lose nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backend.batcher import WriteBatch, WriteBehindBatcher
from sluice.backend.local import LocalBackend
from sluice.errors import StoreError
from sluice.schemas import LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.settings import Settings, StoreSettings
from sluice.states import Completed, Pending, Running

# -- the batcher on its own (a sink that keeps what it is given) ------------------------


class ListSink:
    """Keeps every batch; fails while ``failing`` is set; can be slowed down."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[WriteBatch] = []
        self.failing = threading.Event()
        self.delay = delay

    def __call__(self, batch: WriteBatch) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.failing.is_set():
            raise RuntimeError("disk on fire")
        self.batches.append(batch)

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
    with pytest.raises(StoreError, match="7 records could not be written"):
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
