"""The spool file: its format, who writes it back, and that writing it back twice adds nothing.

Real SQLite stores and real files; the spool is filled through the
:class:`~sluice.backend.spool.Spool` the embedded writer uses (the outage that
makes the writer use it is in ``test_store_outage.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sluice.backend.batcher import WriteBatch
from sluice.backend.local import LocalBackend
from sluice.backend.spool import Spool, spool_dir
from sluice.schemas import FlowRunFilter, FlowRunRecord, LogRecord, StateRecord, new_id
from sluice.settings import Settings, load_settings
from sluice.states import Running
from sluice.store.rows import FLOW_RUN, LOG, STATE
from sluice.store.write_groups import RecordKind, batch_snapshots, write_groups


def _settings(home: Path) -> Settings:
    return Settings(home=home)


def _spool_for(settings: Settings) -> Spool:
    """A spool for the store of ``settings``, as its LocalBackend makes one."""
    backend = LocalBackend(settings)
    try:
        label = repr(backend)[len("LocalBackend('") : -2]
        return Spool(
            spool_dir(settings.home, label),
            label,
            lambda batch: write_groups(batch_snapshots(batch)),
            backend._write_resent,
        )
    finally:
        backend.close()


def _batch(run: FlowRunRecord, lines: int) -> WriteBatch:
    state = StateRecord.from_state(run.id, "flow", Running())
    batch = WriteBatch()
    batch.add(RecordKind.FLOW_RUN, run.id, FLOW_RUN.snapshot(run))
    batch.add(RecordKind.STATE, None, STATE.snapshot(state))
    for i in range(lines):
        line = LogRecord(run.id, None, 20, "sluice.flow_runs", f"line {i} \ud800", state.timestamp)
        batch.add(RecordKind.LOG, None, LOG.snapshot(line))
    return batch


def _held(settings: Settings, run_id: str) -> tuple[int, int, int]:
    """How many flow runs with this id, states and log lines the store holds."""
    backend = LocalBackend(settings)
    try:
        runs = [r for r in backend.list_flow_runs(FlowRunFilter()) if r.id == run_id]
        if not runs:
            return 0, 0, 0
        return 1, len(backend.read_states(run_id)), len(backend.read_logs(run_id))
    finally:
        backend.close()


def test_a_spool_file_is_json_lines_written_back_by_the_next_opener_once_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path / "home")
    spool = _spool_for(settings)
    run = FlowRunRecord(new_id(), "spooled", "spooled-run")
    run.apply(Running())
    spool.keep(_batch(run, lines=3), None)
    assert spool.path is not None and spool.path.parent == spool.directory
    header, batch_line = spool.path.read_text().splitlines()
    assert json.loads(header)["sluice_spool"] == 1
    assert json.loads(header)["database"] == spool.database
    assert sorted(json.loads(batch_line)) == ["flow_runs", "logs", "states"]

    # Its owner is alive (it holds the file): another process opening the store
    # leaves the file alone rather than racing its appends.
    assert _held(settings, run.id) == (0, 0, 0)
    assert spool.path.exists()

    # The owner dies halfway through appending its next batch.
    with spool.path.open("ab") as fh:
        fh.write(b'{"states":[{"run_id":"')
    path = spool.path
    spool.close()
    assert _held(settings, run.id) == (1, 1, 3)  # the cut-off line is ignored
    assert not path.exists()
    backend = LocalBackend(settings)
    try:
        # Text no database holds (a lone surrogate) went through the file intact
        # and is stored with U+FFFD in its place rather than refusing the batch.
        assert backend.read_logs(run.id)[0].message == "line 0 \ufffd"
    finally:
        backend.close()
    assert f"the 5 records kept in {path}" in capsys.readouterr().err


def test_writing_a_spool_file_back_twice_adds_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    spool = _spool_for(settings)
    run = FlowRunRecord(new_id(), "spooled", "spooled-run")
    run.apply(Running())
    spool.keep(_batch(run, lines=2), None)
    spool.keep(_batch(run, lines=2), None)  # the same lines again: really repeated, both kept
    assert spool.path is not None
    copy = tmp_path / "copy.jsonl"
    shutil.copy(spool.path, copy)
    path = spool.path
    spool.close()
    assert _held(settings, run.id) == (1, 2, 4)
    shutil.copy(copy, path)  # a crash came between the last commit and the deletion
    assert _held(settings, run.id) == (1, 2, 4)
    assert not path.exists()


def test_a_spool_the_database_refuses_is_set_aside_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path / "home")
    spool = _spool_for(settings)
    run = FlowRunRecord(new_id(), "spooled", "spooled-run")
    spool.keep(_batch(run, lines=1), None)
    assert spool.path is not None
    path = spool.path
    spool.close()
    with path.open("a") as fh:
        fh.write('{"flow_runs":[{"id":null}]}\n')  # a row no store takes
    LocalBackend(settings).close()
    rejected = path.with_name(path.name + ".rejected")
    assert rejected.exists() and not path.exists()
    err = capsys.readouterr().err
    assert f"the file is kept as {rejected} and not replayed again" in err


def test_the_retry_timeout_keeps_its_older_name(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"SLUICE_HOME": str(home)}
    assert load_settings(env).store.retry_timeout == 120.0
    assert load_settings({**env, "SLUICE_API_RETRY_TIMEOUT": "7"}).store.retry_timeout == 7.0
    both = {**env, "SLUICE_API_RETRY_TIMEOUT": "7", "SLUICE_STORE_RETRY_TIMEOUT": "9"}
    assert load_settings(both).store.retry_timeout == 9.0
    home.mkdir()
    (home / "config.toml").write_text("api_retry_timeout = 5\n")
    assert load_settings(env).store.retry_timeout == 5.0
    assert Settings(api_retry_timeout=3).store.retry_timeout == 3.0
    assert load_settings(env).api_retry_timeout == 5.0  # read under its older name too


def test_a_lone_surrogate_in_a_log_line_is_stored_replaced_not_refusing_its_batch(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(_settings(tmp_path / "home"))
    try:
        run = FlowRunRecord(new_id(), "surrogate", "surrogate-run")
        backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", Running()))
        at = StateRecord.from_state(run.id, "flow", Running()).timestamp
        backend.write_logs([LogRecord(run.id, None, 20, "t", "file \udcff.txt", at)])
        backend.flush()
        assert [r.message for r in backend.read_logs(run.id)] == ["file \ufffd.txt"]
        assert len(backend.read_states(run.id)) == 1
    finally:
        backend.close()


def test_a_spooled_batch_of_a_superseded_attempt_stores_nothing_when_written_back(
    tmp_path: Path,
) -> None:
    """A process spools while holding attempt 1; the run is resumed meanwhile
    (attempt 2). Written back later, the spooled records carry their fence and
    the store refuses them: the newer attempt's record stands."""
    settings = _settings(tmp_path / "home")
    run = FlowRunRecord(new_id(), "spooled", "fenced-run")
    run.apply(Running())
    owner = LocalBackend(settings)
    try:
        owner.write_flow_run(run)
        first = owner.claim_attempt(run.id)
        owner.hold_attempt(run.id, first)
        label = repr(owner)[len("LocalBackend('") : -2]
        spool = Spool(
            spool_dir(settings.home, label),
            label,
            owner._fenced_groups,
            owner._write_resent,
        )
        spool.keep(_batch(run, lines=3), None)
    finally:
        owner.close()
    assert spool.path is not None
    assert json.loads(spool.path.read_text().splitlines()[1])["fences"] == [
        {"f_id": run.id, "f_attempt": first}
    ]
    newer = LocalBackend(settings)
    try:
        assert newer.claim_attempt(run.id) == first + 1
        states_before = len(newer.read_states(run.id))
    finally:
        newer.close()
    path = spool.path
    spool.close()
    # The next opener writes the file back; the store refuses its records.
    assert _held(settings, run.id) == (1, states_before, 0)
    assert not path.exists()
