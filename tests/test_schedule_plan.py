"""plan_runs: what a scheduler creates now, what it records as skipped, driven by a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sluice.errors import ScheduleError
from sluice.scheduling.schedules import (
    CronSchedule,
    IntervalSchedule,
    RunPlan,
    Schedule,
    plan_runs,
    times_between,
)

UTC = timezone.utc
HOURLY = CronSchedule("0 * * * *")
DAILY_6 = CronSchedule("0 6 * * *")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def plan(
    schedules: list[Schedule],
    now: datetime,
    planned_until: datetime | None,
    *,
    horizon: timedelta = timedelta(hours=3),
    max_runs: int = 100,
    catchup: bool = False,
    grace: timedelta = timedelta(minutes=1),
) -> RunPlan:
    return plan_runs(
        schedules,
        now=now,
        planned_until=planned_until,
        horizon=horizon,
        max_runs=max_runs,
        catchup=catchup,
        grace=grace,
    )


def test_first_plan_starts_now_and_misses_nothing() -> None:
    result = plan([HOURLY], utc(2024, 5, 1, 10, 30), None)
    assert result == RunPlan(
        to_create=[utc(2024, 5, 1, 11), utc(2024, 5, 1, 12), utc(2024, 5, 1, 13)], skipped=[]
    )


def test_a_tick_exactly_now_is_created_and_the_horizon_end_is_not() -> None:
    result = plan([HOURLY], utc(2024, 5, 1, 10), None)
    assert result.to_create == [utc(2024, 5, 1, 10), utc(2024, 5, 1, 11), utc(2024, 5, 1, 12)]


def test_after_downtime_missed_runs_are_skipped_not_stampeded() -> None:
    # Last planned run: 1 May 06:00. The scheduler comes back on 4 May at 12:00.
    result = plan([DAILY_6], utc(2024, 5, 4, 12), utc(2024, 5, 1, 6), horizon=timedelta(days=1))
    assert result.skipped == [utc(2024, 5, 2, 6), utc(2024, 5, 3, 6), utc(2024, 5, 4, 6)]
    assert result.to_create == [utc(2024, 5, 5, 6)]


def test_with_catchup_missed_runs_are_created_first() -> None:
    result = plan(
        [DAILY_6], utc(2024, 5, 4, 12), utc(2024, 5, 1, 6), horizon=timedelta(days=1), catchup=True
    )
    assert result.skipped == []
    assert result.to_create == [
        utc(2024, 5, 2, 6),
        utc(2024, 5, 3, 6),
        utc(2024, 5, 4, 6),
        utc(2024, 5, 5, 6),
    ]


def test_grace_period_keeps_a_just_missed_run() -> None:
    now = utc(2024, 5, 1, 10, 0, 45)
    kept = plan([HOURLY], now, utc(2024, 5, 1, 9), grace=timedelta(minutes=1))
    assert kept.skipped == [] and kept.to_create[0] == utc(2024, 5, 1, 10)
    dropped = plan([HOURLY], now, utc(2024, 5, 1, 9), grace=timedelta(seconds=30))
    assert dropped.skipped == [utc(2024, 5, 1, 10)] and dropped.to_create[0] == utc(2024, 5, 1, 11)
    # The edge: a tick exactly at now - grace is still on time.
    edge = plan([HOURLY], utc(2024, 5, 1, 10, 1), utc(2024, 5, 1, 9), grace=timedelta(minutes=1))
    assert edge.skipped == [] and edge.to_create[0] == utc(2024, 5, 1, 10)


def test_nothing_at_or_before_planned_until_is_planned_again() -> None:
    now = utc(2024, 5, 1, 10, 30)
    result = plan([HOURLY], now, utc(2024, 5, 1, 12), horizon=timedelta(hours=4))
    assert result == RunPlan(to_create=[utc(2024, 5, 1, 13), utc(2024, 5, 1, 14)], skipped=[])
    beyond = plan([HOURLY], now, utc(2024, 5, 2), horizon=timedelta(hours=4))
    assert beyond == RunPlan(to_create=[], skipped=[])


def test_max_runs_counts_the_runs_already_planned_ahead() -> None:
    now = utc(2024, 5, 1, 10, 30)
    fresh = plan([HOURLY], now, None, horizon=timedelta(days=1), max_runs=5)
    assert fresh.to_create == [utc(2024, 5, 1, h) for h in range(11, 16)]
    # 11:00 and 12:00 exist already: three more keep five scheduled ahead.
    topped_up = plan([HOURLY], now, utc(2024, 5, 1, 12), horizon=timedelta(days=1), max_runs=5)
    assert topped_up.to_create == [utc(2024, 5, 1, 13), utc(2024, 5, 1, 14), utc(2024, 5, 1, 15)]
    full = plan([HOURLY], now, utc(2024, 5, 1, 15), horizon=timedelta(days=1), max_runs=5)
    assert full.to_create == []


def test_max_runs_zero_still_reports_missed_runs() -> None:
    result = plan([HOURLY], utc(2024, 5, 1, 10, 30), utc(2024, 5, 1, 7), max_runs=0)
    assert result == RunPlan(
        to_create=[], skipped=[utc(2024, 5, 1, 8), utc(2024, 5, 1, 9), utc(2024, 5, 1, 10)]
    )
    # Advanced to the last skipped tick, the next plan does not report them again.
    again = plan([HOURLY], utc(2024, 5, 1, 10, 35), utc(2024, 5, 1, 10), max_runs=0)
    assert again == RunPlan(to_create=[], skipped=[])


def test_several_schedules_are_merged_without_duplicates() -> None:
    half_hourly = IntervalSchedule(timedelta(minutes=30), anchor_date=utc(2024, 1, 1))
    result = plan(
        [HOURLY, half_hourly, HOURLY], utc(2024, 5, 1, 10), None, horizon=timedelta(hours=2)
    )
    assert result.to_create == [
        utc(2024, 5, 1, 10),
        utc(2024, 5, 1, 10, 30),
        utc(2024, 5, 1, 11),
        utc(2024, 5, 1, 11, 30),
    ]
    assert plan([], utc(2024, 5, 1, 10), None) == RunPlan(to_create=[], skipped=[])


@pytest.mark.parametrize("catchup", [False, True])
def test_a_scheduler_loop_with_a_fake_clock_accounts_for_every_tick_once(catchup: bool) -> None:
    """Every 7 minutes for three days, with an 8-hour outage: each tick of the two
    schedules is created or skipped exactly once, and skipped only during the outage."""
    schedules: list[Schedule] = [CronSchedule("*/20 * * * *", "Europe/London"), DAILY_6]
    start, end = utc(2024, 10, 26), utc(2024, 10, 29)  # across the London fall-back
    outage = (utc(2024, 10, 27, 3), utc(2024, 10, 27, 11))
    created: list[datetime] = []
    skipped: list[datetime] = []
    planned_until: datetime | None = None
    now = start
    while now < end:
        if not outage[0] <= now < outage[1]:
            result = plan(
                schedules,
                now,
                planned_until,
                horizon=timedelta(hours=1),
                max_runs=2,
                catchup=catchup,
            )
            created += result.to_create
            skipped += result.skipped
            if result.to_create or result.skipped:
                planned_until = max(result.to_create + result.skipped)
        now += timedelta(minutes=7)

    later = end + timedelta(hours=2)  # the last plans reach past the loop's end
    every = sorted(
        set(times_between(schedules[0], start, later) + times_between(schedules[1], start, later))
    )
    accounted = sorted(created + skipped)
    assert len(accounted) == len(set(accounted)), "a tick was planned twice"
    assert accounted == [t for t in every if t <= accounted[-1]]
    if catchup:
        assert skipped == []
    else:
        assert skipped and all(outage[0] - timedelta(hours=1) <= t < outage[1] for t in skipped)
    assert utc(2024, 10, 27, 6) in (skipped if not catchup else created)


def test_plan_runs_rejects_bad_arguments() -> None:
    now = utc(2024, 5, 1)
    with pytest.raises(ScheduleError, match="now must be a timezone-aware"):
        plan([HOURLY], datetime(2024, 5, 1), None)
    with pytest.raises(ScheduleError, match="planned_until must be a timezone-aware"):
        plan([HOURLY], now, datetime(2024, 5, 1))
    with pytest.raises(ScheduleError, match="horizon must be a timedelta >= 0"):
        plan([HOURLY], now, None, horizon=timedelta(hours=-1))
    with pytest.raises(ScheduleError, match="grace must be a timedelta >= 0"):
        plan([HOURLY], now, None, grace=60)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="max_runs must be a whole number >= 0"):
        plan([HOURLY], now, None, max_runs=-1)
    with pytest.raises(ScheduleError, match="not a schedule"):
        plan(["0 * * * *"], now, None)  # type: ignore[list-item]
