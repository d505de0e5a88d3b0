"""DST: every schedule kind across spring-forward gaps and fall-back overlaps.

The rules under test (sluice.scheduling.schedules docstring): a wall-clock time in a
gap runs once at the first instant after the gap; a repeated wall-clock time runs once
at its first occurrence, except cron with an hour field of ``*`` / ``*/N``, which
fires in both occurrences (it is periodic in absolute time).

2024 transitions used: London 31 Mar 01:00 UTC (01:00 GMT -> 02:00 BST) and 27 Oct
01:00 UTC (02:00 BST -> 01:00 GMT); New York 10 Mar 07:00 UTC (02:00 EST -> 03:00 EDT)
and 3 Nov 06:00 UTC (02:00 EDT -> 01:00 EST); Lord Howe (30-minute DST) 6 Apr 15:00
UTC (02:00 +11 -> 01:30 +10:30) and 5 Oct 15:30 UTC (02:00 +10:30 -> 02:30 +11).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sluice.scheduling.schedules import (
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    Schedule,
    next_times,
    times_between,
)
from tests.test_schedules import _random_field

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(ticks: list[datetime], zone: str) -> list[str]:
    """Ticks as local wall time with offset, easy to read in a failing assert."""
    return [t.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M%z") for t in ticks]


def around(day: datetime, hours: int = 36) -> tuple[datetime, datetime]:
    return day - timedelta(hours=hours), day + timedelta(hours=hours)


# --- 02:30 daily ----------------------------------------------------------------------


def test_new_york_daily_0230_runs_after_the_gap_and_once_at_fall_back() -> None:
    daily = CronSchedule("30 2 * * *", "America/New_York")
    spring = times_between(daily, utc(2024, 3, 9), utc(2024, 3, 12))
    assert local(spring, "America/New_York") == [
        "03-09 02:30-0500",
        "03-10 03:00-0400",
        "03-11 02:30-0400",
    ]
    assert spring[1] == utc(2024, 3, 10, 7)  # the first instant after the gap
    fall = times_between(daily, utc(2024, 11, 2), utc(2024, 11, 5))
    assert local(fall, "America/New_York") == [
        "11-02 02:30-0400",
        "11-03 02:30-0500",
        "11-04 02:30-0500",
    ]


def test_london_daily_0230_is_untouched_and_0130_follows_the_rules() -> None:
    # London's gap and overlap are 01:00-02:00, so 02:30 exists exactly once each day.
    daily = CronSchedule("30 2 * * *", "Europe/London")
    for start in (utc(2024, 3, 30), utc(2024, 10, 26)):
        ticks = times_between(daily, start, start + timedelta(days=3))
        assert [t.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M") for t in ticks] == [
            "02:30"
        ] * 3
    early = CronSchedule("30 1 * * *", "Europe/London")
    assert local(times_between(early, utc(2024, 3, 30), utc(2024, 4, 1)), "Europe/London") == [
        "03-30 01:30+0000",
        "03-31 02:00+0100",  # 01:30 does not exist: first instant after the gap
    ]
    assert local(times_between(early, utc(2024, 10, 26), utc(2024, 10, 28)), "Europe/London") == [
        "10-26 01:30+0100",
        "10-27 01:30+0100",  # occurs twice: only the first
    ]


def test_several_gap_times_collapse_into_one_run() -> None:
    gap_minutes = CronSchedule("0,20,40 1 * * *", "Europe/London")
    ticks = times_between(gap_minutes, utc(2024, 3, 31), utc(2024, 4, 1))
    assert ticks == [utc(2024, 3, 31, 1)]


def test_a_listed_hour_fires_once_in_the_overlap() -> None:
    listed = CronSchedule("0,30 1 * * *", "America/New_York")
    ticks = times_between(listed, utc(2024, 11, 3), utc(2024, 11, 4))
    assert local(ticks, "America/New_York") == ["11-03 01:00-0400", "11-03 01:30-0400"]


# --- hourly and every 30 minutes: periodic in absolute time ---------------------------


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York"])
@pytest.mark.parametrize(
    ("expression", "step"),
    [
        ("0 * * * *", timedelta(hours=1)),
        ("*/30 * * * *", timedelta(minutes=30)),
        ("@hourly", timedelta(hours=1)),
    ],
)
@pytest.mark.parametrize(
    "day", [utc(2024, 3, 31), utc(2024, 10, 27), utc(2024, 3, 10), utc(2024, 11, 3)]
)
def test_star_hour_crons_tick_evenly_in_absolute_time(
    zone: str, expression: str, step: timedelta, day: datetime
) -> None:
    start, end = around(day)
    ticks = times_between(CronSchedule(expression, zone), start, end)
    assert ticks[0] == start and ticks[-1] == end - step
    assert all(b - a == step for a, b in itertools.pairwise(ticks))


def test_hourly_in_the_london_overlap_fires_in_both_occurrences() -> None:
    ticks = times_between(
        CronSchedule("0 * * * *", "Europe/London"), utc(2024, 10, 26, 23), utc(2024, 10, 27, 3)
    )
    assert local(ticks, "Europe/London") == [
        "10-27 00:00+0100",
        "10-27 01:00+0100",
        "10-27 01:00+0000",
        "10-27 02:00+0000",
    ]


def test_stepped_hours_also_fire_in_both_occurrences() -> None:
    odd_hours = CronSchedule("15 */1 * * *", "America/New_York")
    ticks = times_between(odd_hours, utc(2024, 11, 3, 5), utc(2024, 11, 3, 7))
    assert local(ticks, "America/New_York") == ["11-03 01:15-0400", "11-03 01:15-0500"]


# --- Lord Howe: a 30-minute shift --------------------------------------------------------


def test_lord_howe_half_hour_gap_and_overlap() -> None:
    zone = "Australia/Lord_Howe"
    in_gap = CronSchedule("15 2 * * *", zone)
    (tick,) = times_between(in_gap, utc(2024, 10, 5, 12), utc(2024, 10, 6, 12))
    assert local([tick], zone) == ["10-06 02:30+1100"] and tick == utc(2024, 10, 5, 15, 30)

    repeated = CronSchedule("45 1 * * *", zone)
    (tick,) = times_between(repeated, utc(2024, 4, 6, 12), utc(2024, 4, 7, 12))
    assert local([tick], zone) == ["04-07 01:45+1100"]

    half_hourly = CronSchedule("*/30 * * * *", zone)
    ticks = times_between(half_hourly, utc(2024, 4, 6, 14), utc(2024, 4, 6, 16))
    assert local(ticks, zone) == [
        "04-07 01:00+1100",
        "04-07 01:30+1100",
        "04-07 01:30+1030",
        "04-07 02:00+1030",
    ]
    # In spring the clock skips 02:00-02:30: 02:00 runs at 02:30, once with 02:30 itself.
    ticks = times_between(half_hourly, utc(2024, 10, 5, 15), utc(2024, 10, 5, 16, 30))
    assert local(ticks, zone) == ["10-06 01:30+1030", "10-06 02:30+1100", "10-06 03:00+1100"]


# --- intervals and rrules -------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_daily_interval_keeps_the_local_wall_clock(zone: str) -> None:
    daily = IntervalSchedule(timedelta(days=1), anchor_date=datetime(2024, 1, 1, 6), timezone=zone)
    ticks = times_between(daily, utc(2024, 1, 1), utc(2025, 1, 1))
    assert len(ticks) == 366
    assert {t.astimezone(ZoneInfo(zone)).strftime("%H:%M") for t in ticks} == {"06:00"}


def test_sub_day_interval_is_elapsed_time_across_dst() -> None:
    hourly = IntervalSchedule(timedelta(hours=1), timezone="Europe/London")
    start, end = around(utc(2024, 10, 27))
    ticks = times_between(hourly, start, end)
    assert len(ticks) == 72 and all(
        b - a == timedelta(hours=1) for a, b in itertools.pairwise(ticks)
    )
    assert local(ticks[35:39], "Europe/London") == [
        "10-27 00:00+0100",
        "10-27 01:00+0100",
        "10-27 01:00+0000",
        "10-27 02:00+0000",
    ]


def test_daily_interval_in_the_gap_and_overlap() -> None:
    at_0130 = IntervalSchedule(
        timedelta(days=1), anchor_date=datetime(2024, 1, 1, 1, 30), timezone="Europe/London"
    )
    assert local(times_between(at_0130, utc(2024, 3, 31), utc(2024, 4, 1)), "Europe/London") == [
        "03-31 02:00+0100"
    ]
    assert local(times_between(at_0130, utc(2024, 10, 27), utc(2024, 10, 28)), "Europe/London") == [
        "10-27 01:30+0100"
    ]
    # An anchor that is itself the second 01:30 keeps choosing the second one.
    second = datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London"))
    again = IntervalSchedule(timedelta(days=7), anchor_date=second, timezone="Europe/London")
    assert next_times(again, utc(2024, 10, 27), 1) == [utc(2024, 10, 27, 1, 30)]


def test_rrule_in_the_gap_and_overlap() -> None:
    rule = RRuleSchedule("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "America/New_York")
    assert local(times_between(rule, utc(2024, 3, 10), utc(2024, 3, 11)), "America/New_York") == [
        "03-10 01:30-0500"
    ]
    rule = RRuleSchedule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "America/New_York")
    assert times_between(rule, utc(2024, 3, 10), utc(2024, 3, 11)) == [utc(2024, 3, 10, 7)]
    rule = RRuleSchedule("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "America/New_York")
    assert local(times_between(rule, utc(2024, 11, 3), utc(2024, 11, 4)), "America/New_York") == [
        "11-03 01:30-0400"
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        CronSchedule("*/30 * * * *", "Europe/London"),
        CronSchedule("30 1 * * *", "America/New_York"),
        IntervalSchedule(timedelta(days=1), datetime(2024, 1, 1, 1, 30), "Europe/London"),
        RRuleSchedule("FREQ=HOURLY;BYMINUTE=0,30", "Australia/Lord_Howe"),
    ],
)
def test_windows_stitch_together_exactly(schedule: Schedule) -> None:
    """Asking for ticks window by window (as a scheduler does, with any window edges,
    some inside a gap or an overlap) gives exactly the ticks of one big window."""
    start, end = utc(2024, 3, 1), utc(2024, 11, 30)
    whole = times_between(schedule, start, end)
    edges = [start]
    while edges[-1] < end:
        edges.append(min(end, edges[-1] + timedelta(hours=11, minutes=17)))
    # Edges right inside the overlaps (first and second occurrence) of each zone.
    overlaps = [utc(2024, 10, 27, 0, 40), utc(2024, 10, 27, 1, 10), utc(2024, 11, 3, 5, 40)]
    overlaps += [utc(2024, 11, 3, 6, 10), utc(2024, 4, 6, 14, 40), utc(2024, 4, 6, 15, 10)]
    edges = sorted(set(edges + overlaps))
    pieces = [t for a, b in itertools.pairwise(edges) for t in times_between(schedule, a, b)]
    assert pieces == whole
    chained: list[datetime] = []
    after = start - timedelta(microseconds=1)
    while len(chained) < 200:
        chained.extend(next_times(schedule, after, 7))
        after = chained[-1]
    assert chained == whole[: len(chained)]


# --- every rule at once, against an instant-by-instant reference ------------------------

# (expression, hand-written match on the wall clock, whether the hour field is * or */N)
WALL_RULES = [
    ("30 2 * * *", lambda w: (w.hour, w.minute) == (2, 30), False),
    ("0 * * * *", lambda w: w.minute == 0, True),
    ("*/30 * * * *", lambda w: w.minute % 30 == 0, True),
    ("15,45 1,2 * * *", lambda w: w.minute in (15, 45) and w.hour in (1, 2), False),
    ("*/20 */2 * * *", lambda w: w.minute % 20 == 0 and w.hour % 2 == 0, True),
    ("30 23 * * *", lambda w: (w.hour, w.minute) == (23, 30), False),
    ("0 0 * * *", lambda w: (w.hour, w.minute) == (0, 0), False),
]

# One instant near each transition (UTC). Santiago changes at midnight, so its overlap
# repeats 23:00-24:00 of the day before; Dublin's "DST" is in winter (negative); Apia
# skipped 30 December 2011 entirely.
TRANSITIONS = [
    ("Europe/London", utc(2024, 3, 31, 1)),
    ("Europe/London", utc(2024, 10, 27, 1)),
    ("America/New_York", utc(2024, 3, 10, 7)),
    ("America/New_York", utc(2024, 11, 3, 6)),
    ("Australia/Lord_Howe", utc(2024, 4, 6, 15)),
    ("Australia/Lord_Howe", utc(2024, 10, 5, 15, 30)),
    ("America/Santiago", utc(2024, 4, 7, 3)),
    ("America/Santiago", utc(2024, 9, 8, 4)),
    ("Europe/Dublin", utc(2024, 10, 27, 1)),
    ("Pacific/Apia", utc(2011, 12, 30, 10)),
]


def reference_ticks(
    matches: Callable[[datetime], bool],
    star_hour: bool,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> list[datetime]:
    """Walk instants minute by minute: fire where the wall clock matches (in a repeated
    hour only the first time, unless the hour is starred), and at the instant a clock
    jumps forward, fire if any skipped wall-clock minute matches."""
    minute = timedelta(minutes=1)
    out = []
    moment = start
    while moment < end:
        here = moment.astimezone(zone)
        wall = here.replace(tzinfo=None, fold=0)
        jump = here.utcoffset() - (moment - minute).astimezone(zone).utcoffset()  # type: ignore[operator]
        fires = matches(wall) and (here.fold == 0 or star_hour)
        skipped = wall - jump
        while not fires and skipped < wall:
            fires = matches(skipped)
            skipped += minute
        if fires:
            out.append(moment)
        moment += minute
    return out


@pytest.mark.parametrize(
    ("zone", "near"), TRANSITIONS, ids=[f"{z}-{t:%Y-%m-%d}" for z, t in TRANSITIONS]
)
def test_every_rule_matches_an_instant_by_instant_reference(zone: str, near: datetime) -> None:
    start, end = near - timedelta(hours=26), near + timedelta(hours=26)
    tz = ZoneInfo(zone)
    assert start.astimezone(tz).utcoffset() != end.astimezone(tz).utcoffset()
    for expression, matches, star_hour in WALL_RULES:
        expected = reference_ticks(matches, star_hour, tz, start, end)
        assert times_between(CronSchedule(expression, zone), start, end) == expected, expression


def test_random_crons_near_transitions_match_the_reference() -> None:
    rng = random.Random(7)
    hour_fields = [("*", set(range(24))), ("*/2", set(range(0, 24, 2))), ("1,2", {1, 2})]
    hour_fields += [("23,0", {0, 23}), ("1-3", {1, 2, 3}), ("0-23", set(range(24)))]
    for _ in range(40):
        minute_text, minutes = _random_field(rng, 0, 59)
        hour_text, hours = rng.choice(hour_fields)
        zone, near = rng.choice(TRANSITIONS)
        start, end = near - timedelta(hours=8), near + timedelta(hours=8)
        expression = f"{minute_text} {hour_text} * * *"
        expected = reference_ticks(
            lambda w, m=minutes, h=hours: w.minute in m and w.hour in h,
            hour_text.startswith("*"),
            ZoneInfo(zone),
            start,
            end,
        )
        got = times_between(CronSchedule(expression, zone), start, end)
        assert got == expected, (expression, zone, near)
