"""The scheduler pass with a fake clock, and two schedulers racing in real processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.local import LocalBackend
from sluice.deployments.scheduler import MISSED_MESSAGE, schedule_due_runs
from sluice.scheduling.schedules import (
    IntervalSchedule,
    schedule_from_dict,
    schedule_to_dict,
    times_between,
)
from sluice.settings import Settings, StoreSettings
from sluice.states import StateType, utcnow
from tests.deployment_backends import (  # noqa: F401 (the fixture)
    PG_URL,
    deployments_pg_url,
    empty_store,
    make_deployment,
)

MINUTE = dt.timedelta(minutes=1)


def _every_minute(anchor: dt.datetime) -> list[dict[str, Any]]:
    return [dict(schedule_to_dict(IntervalSchedule(MINUTE, anchor_date=anchor)))]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    instance = LocalBackend(Settings(home=tmp_path / "home", store=StoreSettings(lock_timeout=10)))
    yield instance
    instance.close()


@pytest.fixture
def clock() -> dt.datetime:
    """A fake "now" on a whole minute, near the real time (runs are created at real time)."""
    return utcnow().replace(second=0, microsecond=0) + MINUTE


def _pass(backend: LocalBackend, now: dt.datetime, **kw: Any) -> Any:
    kw.setdefault("horizon", 5 * MINUTE)
    kw.setdefault("grace", MINUTE)
    kw.setdefault("max_runs", 100)
    return schedule_due_runs(backend, now=now, **kw)


def _ticks(backend: LocalBackend, key: str = "etl/daily") -> list[tuple[dt.datetime, str]]:
    runs = backend.list_deployment_runs(key, limit=0)
    return [(r.scheduled_start_time, r.state_name) for r in runs if r.idempotency_key]


def test_first_pass_creates_upcoming_runs_once(backend: LocalBackend, clock: dt.datetime) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    report = _pass(backend, clock)
    assert report.created == 5
    assert [t for t, _ in _ticks(backend)] == [clock + i * MINUTE for i in range(5)]
    assert _pass(backend, clock).created == 0
    # A minute later one more tick enters the horizon.
    assert _pass(backend, clock + MINUTE).created == 1
    assert backend.read_deployment("etl/daily").planned_until == clock + 5 * MINUTE


def test_max_runs_caps_upcoming_runs(backend: LocalBackend, clock: dt.datetime) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    assert _pass(backend, clock, max_runs=2).created == 2


def test_downtime_without_catchup_records_skipped_ticks(
    backend: LocalBackend, clock: dt.datetime
) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    _pass(backend, clock, horizon=MINUTE)  # creates the tick at `clock`
    later = clock + 10 * MINUTE
    report = _pass(backend, later, horizon=MINUTE)
    states = dict(_ticks(backend))
    # Missed: ticks after the last planned one and older than the grace period.
    skipped = [t for t, name in states.items() if name == "Skipped"]
    assert report.skipped == len(skipped) == 8
    assert skipped == [clock + i * MINUTE for i in range(1, 9)]
    assert states[later - MINUTE] == "Scheduled"  # within grace: still run
    assert states[later] == "Scheduled"
    run = next(r for r in backend.list_deployment_runs("etl/daily") if r.state_name == "Skipped")
    assert run.state_type is StateType.CANCELLED and run.state_message == MISSED_MESSAGE
    # Skipped ticks keep their slot: nothing is created for them later.
    assert _pass(backend, later, horizon=MINUTE).created == 0


def test_downtime_with_catchup_creates_missed_runs(
    backend: LocalBackend, clock: dt.datetime
) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock), catchup=True))
    _pass(backend, clock, horizon=MINUTE)
    report = _pass(backend, clock + 10 * MINUTE, horizon=MINUTE)
    assert report.skipped == 0
    assert report.created == 10
    ticks = _ticks(backend)
    assert [t for t, _ in ticks] == [clock + i * MINUTE for i in range(11)]
    # Every missed tick will run (Late ones too: they stay claimable); none skipped.
    assert {name for _, name in ticks} <= {"Scheduled", "Late"}


def test_paused_deployments_get_no_runs(backend: LocalBackend, clock: dt.datetime) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock), paused=True))
    assert _pass(backend, clock).created == 0


def test_pausing_drops_upcoming_runs_and_resuming_plans_afresh(
    backend: LocalBackend, clock: dt.datetime
) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    assert _pass(backend, clock).created == 5
    # Paused with real time a bit before the fake clock: every run is still upcoming.
    backend.update_deployment("etl/daily", {"paused": True})
    assert _ticks(backend) == []
    backend.update_deployment("etl/daily", {"paused": False})
    later = clock + 30 * MINUTE
    report = _pass(backend, later)
    assert (report.created, report.skipped) == (5, 0)  # the pause is not "missed" time
    assert [t for t, _ in _ticks(backend)] == [later + i * MINUTE for i in range(5)]


def test_late_runs_are_marked(backend: LocalBackend, clock: dt.datetime) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    _pass(backend, clock, horizon=MINUTE)
    report = _pass(backend, clock + 3 * MINUTE, horizon=MINUTE)
    assert len(report.late) == 1
    assert backend.read_flow_run(report.late[0]).state_name == "Late"


def test_a_broken_deployment_does_not_stop_the_others(
    backend: LocalBackend, clock: dt.datetime
) -> None:
    # Written by hand into the store (every way in refuses such a schedule): one
    # stored by an older version, say.
    from sqlalchemy import update

    from sluice.store.database import write_connection
    from sluice.store.schema import deployment

    broken = backend.upsert_deployment(make_deployment("broken"))
    with write_connection(backend.engine) as conn:
        unreadable = json.dumps([{"kind": "sometimes"}])
        conn.execute(
            update(deployment).where(deployment.c.id == broken.id).values(schedules=unreadable)
        )
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    report = _pass(backend, clock)
    assert report.created == 5
    assert "etl/broken" in report.errors
    assert "sometimes" in report.errors["etl/broken"]


def test_max_active_runs_skips_ticks_behind_a_long_run(
    backend: LocalBackend, clock: dt.datetime
) -> None:
    backend.upsert_deployment(
        make_deployment(schedules=_every_minute(clock), max_active_runs=1, work_pool_name="p")
    )
    _pass(backend, clock, horizon=MINUTE)
    assert len(backend.claim_flow_runs("p", worker_name="w", limit=5, now=clock)) == 1
    backend.worker_heartbeat("p", "w", now=clock + 3 * MINUTE)  # alive: its run stays
    _pass(backend, clock + 3 * MINUTE, horizon=MINUTE)
    report = _pass(backend, clock + 3 * MINUTE, horizon=MINUTE)
    names = [name for _, name in _ticks(backend)]
    assert names[0] == "Pending"
    # Due while the first run holds the only slot: skipped, not piled up.
    assert "Skipped" in names
    assert report.over_limit == []  # the first pass at that time did it


def test_runs_of_a_dead_worker_are_handed_back(backend: LocalBackend, clock: dt.datetime) -> None:
    backend.upsert_deployment(make_deployment(schedules=_every_minute(clock)))
    _pass(backend, clock, horizon=MINUTE)
    (claimed,) = backend.claim_flow_runs("default", worker_name="gone", limit=5, now=clock)
    report = _pass(backend, clock + 2 * MINUTE, horizon=MINUTE, orphan_timeout=MINUTE)
    assert report.requeued == [claimed.id]
    assert backend.read_flow_run(claimed.id).state_name == "Scheduled"


# -- two schedulers racing -------------------------------------------------------------------

_SCHEDULER = textwrap.dedent(
    """
    import datetime as dt, json, sys, time
    from pathlib import Path
    from sluice.backend.local import LocalBackend
    from sluice.deployments.scheduler import schedule_due_runs
    from sluice.settings import Settings, StoreSettings

    home, url, start, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    backend = LocalBackend(Settings(home=Path(home), database_url=url,
                                    store=StoreSettings(lock_timeout=60.0)))
    clock = dt.datetime.fromisoformat(start)
    backend.list_work_pools()  # connected and warm before the start line
    (go.parent / f"ready-{sys.argv[5]}").touch()
    while not go.exists():
        time.sleep(0.005)
    created = 0
    for step in range(30):
        now = clock + dt.timedelta(seconds=10 * step)
        report = schedule_due_runs(backend, now=now, horizon=dt.timedelta(minutes=5),
                                   max_runs=1000, grace=dt.timedelta(minutes=1))
        created += report.created
    backend.close()
    print(json.dumps(created))
    """
)


def _race_schedulers(tmp_path: Path, url: str) -> None:
    home = tmp_path / "home"
    backend = LocalBackend(Settings(home=home, database_url=url, store=StoreSettings()))
    try:
        if url:
            empty_store(backend)
        clock = utcnow().replace(second=0, microsecond=0) + MINUTE
        for i in range(3):
            anchor = clock + dt.timedelta(seconds=7 * i)
            schedule = [dict(schedule_to_dict(IntervalSchedule(dt.timedelta(seconds=20), anchor)))]
            backend.upsert_deployment(make_deployment(f"d{i}", schedules=schedule))
        go = tmp_path / "go"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        argv = [sys.executable, "-c", _SCHEDULER, str(home), url, clock.isoformat(), str(go)]
        procs = [
            subprocess.Popen(
                [*argv, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for i in range(2)
        ]
        try:
            deadline = time.monotonic() + 60
            ready = [tmp_path / f"ready-{i}" for i in range(2)]
            while not all(r.exists() for r in ready) and time.monotonic() < deadline:
                time.sleep(0.01)
            go.touch()
            outputs = [proc.communicate(timeout=100) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
        created = [json.loads(out) for out, _ in outputs]
        runs = [r for i in range(3) for r in backend.list_deployment_runs(f"etl/d{i}", limit=0)]
        per_tick = Counter((r.deployment_id, r.scheduled_start_time) for r in runs)
        assert max(per_tick.values()) == 1
        # Every tick from the clock to the last pass's horizon (290 s + 5 minutes).
        end = clock + dt.timedelta(seconds=290) + 5 * MINUTE
        expected = sum(
            len(times_between(schedule_from_dict(d.schedules[0]), clock, end))
            for d in backend.list_deployments()
        )
        assert len(runs) == expected
        assert sum(created) == len(runs)  # together they created each run exactly once
    finally:
        backend.close()


@pytest.mark.slow
@pytest.mark.integration
def test_two_schedulers_racing_create_each_tick_once_on_sqlite(tmp_path: Path) -> None:
    _race_schedulers(tmp_path, "")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
def test_two_schedulers_racing_create_each_tick_once_on_postgresql(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _race_schedulers(tmp_path, request.getfixturevalue("deployments_pg_url"))
