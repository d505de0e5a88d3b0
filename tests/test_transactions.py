"""``sluice.transactions``: commit and rollback hooks, the key-value store, nesting,
commit modes, keys and isolation, as Prefect 3 documents them, plus what a
rollback means for the run's record and a resume."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from sluice import flow, resume_flow_run, task
from sluice.backend.factory import get_backend
from sluice.states import StateType
from sluice.task_runners import ThreadPoolTaskRunner
from sluice.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    get_transaction,
    transaction,
)
from tests.helpers import flow_runs, only_flow_run, states, task_runs
from tests.worker_helpers import wait_for

events: list[tuple[str, Any]] = []


@pytest.fixture(autouse=True)
def clear_events() -> None:
    events.clear()


@task
def write_file(path: str, contents: str) -> str:
    Path(path).write_text(contents)
    events.append(("write", Path(path).name))
    return path


@write_file.on_rollback
def delete_file(txn: Transaction) -> None:
    Path(txn.get("path")).unlink()
    events.append(("rollback", Path(txn.get("path")).name))


@write_file.on_commit
def announce(txn: Transaction) -> None:
    events.append(("commit", Path(txn.get("path")).name))


@task
def quality_test(path: str) -> None:
    if len(Path(path).read_text().splitlines()) < 2:
        raise ValueError("Not enough data!")


def test_a_failure_in_the_block_runs_the_completed_tasks_rollback_hooks(tmp_path: Path) -> None:
    target = tmp_path / "side-effect.txt"

    @flow
    def pipeline(contents: str) -> None:
        with transaction() as txn:
            txn.set("path", str(target))
            write_file(str(target), contents)
            quality_test(str(target))

    with pytest.raises(ValueError, match="Not enough data"):
        pipeline("hello world")
    assert not target.exists()
    assert events == [("write", "side-effect.txt"), ("rollback", "side-effect.txt")]
    runs = {t.task_name: t for t in task_runs(only_flow_run("pipeline").id)}
    assert (runs["write_file"].state_type, runs["write_file"].state_name) == (
        StateType.CANCELLED,
        "RolledBack",
    )
    assert runs["quality_test"].state_type is StateType.FAILED
    copy = write_file.with_options(name="write_copy")
    assert copy.on_rollback_hooks == [delete_file] and copy.on_commit_hooks == [announce]


def test_on_commit_runs_when_the_block_commits_not_when_the_task_completes(tmp_path: Path) -> None:
    @task
    def step(name: str) -> None:
        events.append(("step", name))

    @flow
    def pipeline() -> None:
        with transaction() as txn:
            txn.set("path", str(tmp_path / "a.txt"))
            write_file(str(tmp_path / "a.txt"), "one\ntwo\n")
            quality_test(str(tmp_path / "a.txt"))
            step("last")

    pipeline()
    assert events == [("write", "a.txt"), ("step", "last"), ("commit", "a.txt")]
    assert (tmp_path / "a.txt").exists()


def test_rollback_hooks_run_latest_first_and_see_the_blocks_values() -> None:
    @task
    def append(n: int) -> int:
        get_transaction().set("n", n)  # type: ignore[union-attr]  # the run's own transaction
        return n

    @append.on_rollback
    def undo(txn: Transaction) -> None:
        events.append(("undo", (txn.get("batch"), txn.get("n"))))

    @flow
    def batch() -> None:
        with transaction() as txn:
            txn.set("batch", "b1")
            for n in (1, 2, 3):
                append(n)
            assert txn.get("n", default=None) is None  # a task's values stay its own
            with pytest.raises(ValueError, match="unknown key: nope"):
                txn.get("nope")
            raise RuntimeError("abandon the batch")

    with pytest.raises(RuntimeError):
        batch()
    assert events == [("undo", ("b1", 3)), ("undo", ("b1", 2)), ("undo", ("b1", 1))]


def test_submitted_tasks_join_the_block_and_a_caught_failure_still_rolls_it_back() -> None:
    @task
    def load(n: int) -> int:
        assert get_transaction() is not None
        return n

    @load.on_rollback
    def unload(txn: Transaction) -> None:
        events.append(("unload", txn.get("batch")))

    @task
    def broken() -> None:
        raise OSError("disk")

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def loader() -> str:
        with transaction() as txn:
            txn.set("batch", 7)
            for future in load.map([1, 2, 3]):
                future.wait()
            with contextlib.suppress(OSError):
                broken()  # caught, but the block was rolled back when it failed (as in Prefect)
        return "finished"

    assert loader() == "finished"
    assert events == [("unload", 7)] * 3
    names = sorted(t.state_name for t in task_runs(only_flow_run("loader").id))
    assert names == ["Failed", "RolledBack", "RolledBack", "RolledBack"]


def test_nested_blocks_an_inner_commit_waits_for_the_outer_and_eager_does_not() -> None:
    @task
    def mark(name: str) -> None:
        events.append(("ran", name))

    @mark.on_commit
    def committed(txn: Transaction) -> None:
        events.append(("commit", txn.get("name")))

    @mark.on_rollback
    def rolled(txn: Transaction) -> None:
        events.append(("rollback", txn.get("name")))

    @flow
    def nested(fail: bool) -> None:
        with transaction() as outer:
            with transaction() as lazy:
                lazy.set("name", "lazy")
                mark("lazy")
            with transaction(commit_mode=CommitMode.EAGER) as eager:
                eager.set("name", "eager")
                mark("eager")
            events.append(("inner blocks done", outer.state.value))
            if fail:
                raise RuntimeError("outer fails")

    nested(False)
    assert events == [
        ("ran", "lazy"),
        ("ran", "eager"),
        ("commit", "eager"),
        ("inner blocks done", "ACTIVE"),
        ("commit", "lazy"),
    ]
    events.clear()
    with pytest.raises(RuntimeError):
        nested(True)
    assert ("rollback", "lazy") in events and ("commit", "eager") in events
    assert ("rollback", "eager") not in events


def test_an_inner_block_that_fails_rolls_back_the_outer_one() -> None:
    @task
    def mark(name: str) -> None:
        pass

    @mark.on_rollback
    def rolled(txn: Transaction) -> None:
        events.append(("rollback", txn.get("name")))

    @flow
    def guarded() -> bool:
        with transaction() as outer:
            outer.set("name", "outer")
            mark("outer")
            try:
                with transaction():
                    raise KeyError("inner")
            except KeyError:
                pass
        return outer.is_rolled_back()

    assert guarded() is True
    assert events == [("rollback", "outer")]


def test_commit_mode_off_rolls_back_unless_committed_and_a_lone_task_commits_at_once() -> None:
    @task
    def mark(name: str) -> None:
        pass

    @mark.on_commit
    def committed(txn: Transaction) -> None:
        events.append(("commit", txn.get("name", "alone")))

    @mark.on_rollback
    def rolled(txn: Transaction) -> None:
        events.append(("rollback", txn.get("name", "alone")))

    @flow
    def modes() -> None:
        mark("alone")  # no block: its own transaction commits when it completes
        events.append(("after", "alone"))
        with transaction(commit_mode=CommitMode.OFF) as txn:
            txn.set("name", "off")
            mark("off")

    modes()
    assert events == [("commit", "alone"), ("after", "alone"), ("rollback", "off")]


def test_a_keyed_block_runs_once(tmp_path: Path) -> None:
    @task
    def download() -> str:
        events.append(("download", None))
        return "some data"

    @flow
    def idempotent(key: str, overwrite: bool = False) -> str:
        with transaction(key=key, overwrite=overwrite) as txn:
            if txn.is_committed():
                return "already done"
            download()
        return "done"

    assert idempotent("download-and-write") == "done"
    assert idempotent("download-and-write") == "already done"
    assert idempotent("download-and-write", overwrite=True) == "done"
    assert idempotent("another-key") == "done"
    assert events == [("download", None)] * 3
    # A block that rolls back leaves no record: the next one runs.
    with pytest.raises(ZeroDivisionError), transaction(key="never"):
        1 / 0  # noqa: B018
    with transaction(key="never") as again:
        assert not again.is_committed()


def test_serializable_blocks_with_one_key_run_one_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "race-condition.txt"
    started = threading.Barrier(2)

    @task
    def write(contents: str) -> None:
        events.append(("write", contents))
        out.write_text(contents)

    @flow
    def pipeline(key: str) -> None:
        started.wait(timeout=30)
        with transaction(key=key, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
            if txn.is_committed():
                return
            write(threading.current_thread().name)

    threads = [
        threading.Thread(target=pipeline, args=("race",), name=f"Thread {n}") for n in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(events) == 1  # the second found the first's record, under the lock
    assert out.read_text() == events[0][1]


def test_a_resume_runs_rolled_back_tasks_again_and_replays_the_others(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    counts = tmp_path / "counts"
    counts.mkdir()

    def count(name: str) -> None:
        marker = counts / name
        marker.write_text(marker.read_text() + "x" if marker.exists() else "x")

    @task
    def prepare() -> str:
        count("prepare")
        return "ready"

    @task
    def write_rows(path: str) -> str:
        count("write_rows")
        lines = (tmp_path / "source.txt").read_text()
        Path(path).write_text(lines)
        return path

    @write_rows.on_rollback
    def remove_rows(txn: Transaction) -> None:
        data.unlink()

    @flow
    def etl() -> str:
        prepare()
        with transaction():
            write_rows(str(data))
            quality_test(str(data))
        return data.read_text()

    (tmp_path / "source.txt").write_text("only one line\n")
    with pytest.raises(ValueError):
        etl()
    failed = only_flow_run("etl")
    assert failed.state_type is StateType.FAILED and not data.exists()
    (tmp_path / "source.txt").write_text("one\ntwo\n")  # the data is fixed upstream
    assert resume_flow_run(failed.id, flow=etl).result() == "one\ntwo\n"
    # prepare was replayed from the journal; write_rows, whose effect was undone, ran again.
    assert (counts / "prepare").read_text() == "x"
    assert (counts / "write_rows").read_text() == "xx"
    assert [r.state_type for r in flow_runs("etl")] == [StateType.COMPLETED]


def test_a_flow_retry_runs_rolled_back_tasks_again(tmp_path: Path) -> None:
    attempts: list[int] = []

    @task
    def stage_rows() -> str:
        events.append(("stage", len(attempts)))
        return "rows"

    @stage_rows.on_rollback
    def unstage(txn: Transaction) -> None:
        events.append(("unstage", len(attempts)))

    @task
    def before() -> None:
        events.append(("before", len(attempts)))

    @flow(retries=1)
    def flaky() -> None:
        attempts.append(1)
        before()
        with transaction():
            stage_rows()
            if len(attempts) == 1:
                raise ConnectionError("first attempt fails")

    flaky()
    # "before" was replayed on the retry; the rolled-back stage_rows ran again.
    assert events == [("before", 1), ("stage", 1), ("unstage", 1), ("stage", 2)]


def test_a_run_is_staged_until_its_transaction_commits() -> None:
    seen: list[list[str]] = []

    @task
    def load(n: int) -> int:
        return n

    @flow
    def staged() -> None:
        run_id = only_flow_run("staged").id
        with transaction():
            load(1)
            seen.append([t.state_name for t in task_runs(run_id)])
        seen.append([t.state_name for t in task_runs(run_id)])

    staged()
    assert seen == [["Staged"], ["Completed"]]
    (run,) = task_runs(only_flow_run("staged").id)
    assert [s.name for s in states(run.id)][-2:] == ["Staged", "Completed"]
    assert run.result is not None


CRASHING = """
import os
import signal
from pathlib import Path

from sluice import flow, task
from sluice.backend.factory import get_backend
from sluice.transactions import transaction

OUT = Path(os.environ["TXN_OUT"])


def note(text: str) -> None:
    with OUT.open("a") as handle:
        handle.write(text + "\\n")


@task
def before() -> str:
    note("before")
    return "ok"


@task
def load(n: int) -> int:
    note(f"load-{n}")
    return n


@task
def crash_unless_resumed() -> None:
    if not os.environ.get("TXN_RESUMED"):
        get_backend().flush()  # the staged runs are in the store: only a commit is missing
        os.kill(os.getpid(), signal.SIGKILL)


@flow
def batch() -> int:
    before()
    with transaction():
        total = load(1) + load(2)
        crash_unless_resumed()
    return total


if __name__ == "__main__":
    batch()
"""


@pytest.mark.integration
def test_after_a_crash_in_an_open_transaction_a_resume_runs_its_staged_tasks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.txt"
    (tmp_path / "crashing.py").write_text(CRASHING)
    monkeypatch.setenv("TXN_OUT", str(out))
    monkeypatch.setenv("SLUICE_HEARTBEAT_INTERVAL", "0.2")
    done = subprocess.run([sys.executable, str(tmp_path / "crashing.py")], timeout=120)
    assert done.returncode == -signal.SIGKILL
    run = only_flow_run("batch")
    recorded = {t.task_name: t.state_name for t in task_runs(run.id)}
    assert recorded["load"] == "Staged" and recorded["before"] == "Completed"
    backend: Any = get_backend()

    def marked_crashed() -> bool:
        backend.mark_lapsed_runs_crashed(1.0)
        return backend.read_flow_run(run.id).state_type is StateType.CRASHED

    wait_for(marked_crashed, 30, "the killed run to be marked Crashed")
    monkeypatch.setenv("TXN_RESUMED", "1")
    assert resume_flow_run(run.id).result() == 3
    # "before" was replayed; the loads, which never committed, ran again (as in Prefect).
    assert out.read_text().splitlines() == ["before", "load-1", "load-2", "load-1", "load-2"]


def test_a_staged_result_is_no_cache_hit_until_its_transaction_commits() -> None:
    from sluice.cache_policies import DEFAULT

    calls: list[int] = []

    @task(cache_policy=DEFAULT)
    def add_one(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow
    def cached_in_block() -> list[str]:
        with transaction():
            inside = [add_one(1, return_state=True), add_one(1, return_state=True)]
        after = add_one(1, return_state=True)
        return [s.name for s in [*inside, after]]

    # Read committed, as in Prefect: uncommitted results are not seen; committed ones are.
    assert cached_in_block() == ["Completed", "Completed", "Cached"]
    assert calls == [1, 1]
