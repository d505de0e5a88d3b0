"""Backfills: one run of a deployment per schedule tick in a past (or future) range.

Each run is created like a schedule tick's (idempotency key
``scheduled:<UTC ISO time>``, ``scheduled_start_time`` = the tick, tagged
``backfill``), so running the same backfill twice, or over ticks the
scheduler already ran, creates nothing twice. With ``max_active`` the runs
are created a few at a time, so that at most that many are unfinished at once.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sluice.backend.factory import get_backend
from sluice.scheduling.schedule_options import active_schedules
from sluice.scheduling.schedules import times_between
from sluice.schemas import BACKFILL_TAG
from sluice.states import TERMINAL_TYPES, StateType

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.scheduling.schedules import Schedule
    from sluice.schemas import FlowRunRecord

#: runs created per request at most
_CHUNK = 500
_UNFINISHED = [t for t in StateType if t not in TERMINAL_TYPES]


@dataclass
class BackfillReport:
    """What a backfill did."""

    #: the ticks in the range, ascending
    ticks: list[_dt.datetime] = field(default_factory=list)
    #: runs created now (ticks that had a run already are not counted)
    created: int = 0
    #: the runs of the ticks, as last seen (filled when waited for)
    runs: list[FlowRunRecord] = field(default_factory=list)


def backfill_ticks(
    schedules: Sequence[Schedule], start: _dt.datetime, end: _dt.datetime
) -> list[_dt.datetime]:
    """The ticks of ``schedules`` in ``[start, end]`` (both included), merged, ascending.

    Raises:
        ValueError: naive datetimes, or ``end`` before ``start``.
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("backfill start and end need a timezone (aware datetimes)")
    if end < start:
        raise ValueError(f"backfill end {end.isoformat()} is before its start {start.isoformat()}")
    ticks: set[_dt.datetime] = set()
    for s in schedules:
        ticks.update(times_between(s, start, end + _dt.timedelta(microseconds=1)))
    return sorted(ticks)


def backfill(
    deployment_name: str,
    start: _dt.datetime,
    end: _dt.datetime,
    *,
    schedule: Schedule | None = None,
    max_active: int | None = None,
    wait: bool = False,
    poll_interval: float = 1.0,
    on_progress: Callable[[int, int], object] | None = None,
    backend: Backend | None = None,
) -> BackfillReport:
    """Create one run of ``deployment_name`` per tick in ``[start, end]``.

    Args:
        schedule: the ticks' schedule (default: the deployment's schedules).
        max_active: create runs only while fewer than this many of the
            backfill's runs are unfinished (the call returns once all are
            created); None creates them all at once.
        wait: also wait until every run of the range is finished.
        on_progress: called with ``(finished, total)`` while waiting.
        backend: default this process's backend.

    Raises:
        NotFoundError: unknown deployment.
        ValueError: a deployment without schedules and no ``schedule``, a bad
            range, ``max_active < 1``.
    """
    if max_active is not None and max_active < 1:
        raise ValueError(f"max_active must be at least 1, not {max_active!r}")
    store = backend if backend is not None else _default_backend()
    dep = store.read_deployment(deployment_name)
    schedules = [schedule] if schedule is not None else active_schedules(dep.schedules)
    if not schedules:
        which = "active schedule" if dep.schedules else "schedule"
        raise ValueError(
            f"deployment {dep.full_name} has no {which}; give one for the backfill "
            "(cron, interval or rrule)"
        )
    report = BackfillReport(ticks=backfill_ticks(schedules, start, end))
    pending = list(report.ticks)
    while pending:
        room = len(pending)
        if max_active is not None:
            room = max_active - _unfinished(store, dep.id, start, end)
        if room <= 0:
            time.sleep(poll_interval)
            continue
        batch, pending = pending[: min(room, _CHUNK)], pending[min(room, _CHUNK) :]
        report.created += store.create_scheduled_runs(dep.id, times=batch, tags=[BACKFILL_TAG])
    if wait:
        report.runs = _wait_all(store, dep.id, report, start, end, poll_interval, on_progress)
    return report


def _range_runs(
    store: Backend,
    dep_id: str,
    start: _dt.datetime,
    end: _dt.datetime,
    states: Sequence[StateType] | None = None,
) -> list[FlowRunRecord]:
    return store.list_deployment_runs(
        dep_id,
        state_types=states,
        scheduled_after=start,
        scheduled_before=end + _dt.timedelta(microseconds=1),
        limit=0,
    )


def _unfinished(store: Backend, dep_id: str, start: _dt.datetime, end: _dt.datetime) -> int:
    runs = _range_runs(store, dep_id, start, end, _UNFINISHED)
    return sum(1 for r in runs if BACKFILL_TAG in r.tags)


def _wait_all(
    store: Backend,
    dep_id: str,
    report: BackfillReport,
    start: _dt.datetime,
    end: _dt.datetime,
    poll_interval: float,
    on_progress: Callable[[int, int], object] | None,
) -> list[FlowRunRecord]:
    wanted = set(report.ticks)
    while True:
        in_range = _range_runs(store, dep_id, start, end)
        runs = [r for r in in_range if r.scheduled_start_time in wanted]
        done = sum(1 for r in runs if r.state_type in TERMINAL_TYPES)
        if on_progress is not None:
            on_progress(done, len(wanted))
        if done >= len(wanted):
            return runs
        time.sleep(poll_interval)


def _default_backend() -> Backend:
    return get_backend()
