"""Schedule math: cron grammar and matching, intervals, rrules, dicts, flags, errors.

DST behaviour is in test_schedules_dst.py, run planning in test_schedule_plan.py.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sluice.errors import ScheduleError, SluiceError
from sluice.scheduling.rrules import parse_rrule
from sluice.scheduling.schedules import (
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    Schedule,
    describe,
    next_times,
    parse_schedule,
    schedule_from_dict,
    schedule_to_dict,
    times_between,
    validate_schedule,
)

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- cron matching against a brute-force reference ----------------------------------

# Hand-written predicates, independent of the parser: (expression, day_or, predicate).
REFERENCE: list[tuple[str, bool, Callable[[datetime], bool]]] = [
    ("*/15 * * * *", True, lambda t: t.minute % 15 == 0),
    ("1-10/2 3 * * *", True, lambda t: t.minute in (1, 3, 5, 7, 9) and t.hour == 3),
    ("5/20 */6 * * *", True, lambda t: t.minute in (5, 25, 45) and t.hour % 6 == 0),
    (
        "0 9 * feb,mar mon-fri",
        True,
        lambda t: (t.minute, t.hour) == (0, 9) and t.month in (2, 3) and t.weekday() < 5,
    ),
    ("30 12 1,15 * *", True, lambda t: (t.minute, t.hour) == (30, 12) and t.day in (1, 15)),
    ("0 0 * * 7", True, lambda t: (t.minute, t.hour) == (0, 0) and t.weekday() == 6),
    ("0 0 * * sun,SAT", True, lambda t: (t.minute, t.hour) == (0, 0) and t.weekday() >= 5),
    ("0 0 29 * *", True, lambda t: (t.minute, t.hour) == (0, 0) and t.day == 29),
    (
        "0 0 1-7 * mon",
        True,
        lambda t: (t.minute, t.hour) == (0, 0) and (t.day <= 7 or t.weekday() == 0),
    ),
    (
        "0 0 1-7 * mon",
        False,
        lambda t: (t.minute, t.hour) == (0, 0) and t.day <= 7 and t.weekday() == 0,
    ),
    ("0 0 */2 * *", True, lambda t: (t.minute, t.hour) == (0, 0) and t.day % 2 == 1),
    ("0 0 * * */2", True, lambda t: (t.minute, t.hour) == (0, 0) and t.weekday() in (6, 1, 3, 5)),
    ("59 23 * 2 *", True, lambda t: (t.minute, t.hour, t.month) == (59, 23, 2)),
]


@pytest.mark.parametrize(("expression", "day_or", "predicate"), REFERENCE)
def test_cron_matches_a_brute_force_scan(
    expression: str, day_or: bool, predicate: Callable[[datetime], bool]
) -> None:
    start, end = utc(2024, 1, 25), utc(2024, 3, 10)  # across a leap February
    minutes = int((end - start) / timedelta(minutes=1))
    expected = [
        moment
        for moment in (start + timedelta(minutes=i) for i in range(minutes))
        if predicate(moment)
    ]
    assert expected, "a reference that never matches proves nothing"
    assert times_between(CronSchedule(expression, day_or=day_or), start, end) == expected


@pytest.mark.parametrize(
    ("macro", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_cron_macros_equal_their_expansion(macro: str, expression: str) -> None:
    start, end = utc(2023, 12, 1), utc(2025, 2, 1)
    expected = times_between(CronSchedule(expression), start, end)
    assert expected
    assert times_between(CronSchedule(macro), start, end) == expected


def test_day_or_false_means_friday_the_13th() -> None:
    either = CronSchedule("0 0 13 * fri")
    both = CronSchedule("0 0 13 * fri", day_or=False)
    start, end = utc(2024, 1, 1), utc(2026, 1, 1)
    assert times_between(both, start, end) == [
        utc(2024, 9, 13),
        utc(2024, 12, 13),
        utc(2025, 6, 13),
    ]
    assert len(times_between(either, start, end)) == 24 + 104 - 3  # 13ths + Fridays - overlap


def test_sparse_crons_skip_ahead_by_years() -> None:
    leap_day = CronSchedule("0 0 29 2 *")
    assert next_times(leap_day, utc(2025, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]
    leap_monday = CronSchedule("0 0 29 2 mon", day_or=False)
    assert next_times(leap_monday, utc(2025, 1, 1), 2) == [utc(2044, 2, 29), utc(2072, 2, 29)]


def test_next_times_is_strictly_after_and_times_between_is_half_open() -> None:
    hourly = CronSchedule("0 * * * *")
    assert next_times(hourly, utc(2024, 1, 1, 5), 2) == [utc(2024, 1, 1, 6), utc(2024, 1, 1, 7)]
    assert next_times(hourly, utc(2024, 1, 1, 5, 0, 0, 1), 1) == [utc(2024, 1, 1, 6)]
    assert next_times(hourly, utc(2024, 1, 1, 5), 0) == []
    assert times_between(hourly, utc(2024, 1, 1, 5), utc(2024, 1, 1, 7)) == [
        utc(2024, 1, 1, 5),
        utc(2024, 1, 1, 6),
    ]
    assert times_between(hourly, utc(2024, 1, 1, 7), utc(2024, 1, 1, 5)) == []
    assert times_between(hourly, utc(2024, 1, 1), utc(2024, 2, 1), limit=3) == [
        utc(2024, 1, 1, 0),
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]


def test_ticks_are_utc_whatever_the_zone_of_the_arguments() -> None:
    schedule = CronSchedule("0 6 * * *", "Europe/London")
    start = datetime(2024, 7, 1, tzinfo=ZoneInfo("America/New_York"))
    (tick,) = next_times(schedule, start, 1)
    assert tick == utc(2024, 7, 1, 5) and tick.tzinfo is UTC


def test_a_year_of_daily_and_five_minute_crons() -> None:
    daily = times_between(
        CronSchedule("0 2 * * *", "Europe/London"), utc(2025, 1, 1), utc(2026, 1, 1)
    )
    assert len(daily) == 365
    assert {t.astimezone(LONDON).time().isoformat() for t in daily} == {"02:00:00"}

    start, end = utc(2025, 1, 1), utc(2026, 1, 1)
    every_five = times_between(CronSchedule("*/5 * * * *"), start, end)
    assert len(every_five) == 105_120
    assert every_five[0] == start and every_five[-1] == end - timedelta(minutes=5)
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(every_five))
    # In London the gap hour loses 12 wall-clock ticks and the repeated hour gains
    # them back: the minute hand is periodic in absolute time.
    london = times_between(CronSchedule("*/5 * * * *", "Europe/London"), start, end)
    assert london == every_five


# --- intervals ----------------------------------------------------------------------


def test_interval_ticks_are_anchor_plus_multiples_in_both_directions() -> None:
    schedule = IntervalSchedule(timedelta(hours=7), anchor_date=utc(2024, 1, 10, 3))
    assert times_between(schedule, utc(2024, 1, 9), utc(2024, 1, 10, 12)) == [
        utc(2024, 1, 9, 6),
        utc(2024, 1, 9, 13),
        utc(2024, 1, 9, 20),
        utc(2024, 1, 10, 3),
        utc(2024, 1, 10, 10),
    ]
    assert next_times(schedule, utc(2024, 1, 10, 3), 1) == [utc(2024, 1, 10, 10)]


def test_interval_default_anchor_is_2020_midnight_in_its_zone() -> None:
    hourly = IntervalSchedule(timedelta(minutes=90))
    assert next_times(hourly, utc(2020, 1, 1, 0, 1), 1) == [utc(2020, 1, 1, 1, 30)]
    daily_ny = IntervalSchedule(timedelta(days=1), timezone="America/New_York")
    assert next_times(daily_ny, utc(2024, 1, 15), 1) == [utc(2024, 1, 15, 5)]  # EST
    assert next_times(daily_ny, utc(2024, 7, 15), 1) == [utc(2024, 7, 15, 4)]  # EDT


def test_interval_naive_anchor_is_wall_time_in_the_zone() -> None:
    schedule = IntervalSchedule(
        timedelta(days=2), anchor_date=datetime(2024, 6, 1, 9, 30), timezone="Europe/London"
    )
    assert next_times(schedule, utc(2024, 6, 2), 2) == [
        utc(2024, 6, 3, 8, 30),
        utc(2024, 6, 5, 8, 30),
    ]


def test_sub_second_intervals_are_exact() -> None:
    schedule = IntervalSchedule(timedelta(milliseconds=250), anchor_date=utc(2024, 1, 1))
    ticks = times_between(schedule, utc(2024, 1, 1, 0, 0, 1), utc(2024, 1, 1, 0, 0, 2))
    assert ticks == [utc(2024, 1, 1, 0, 0, 1) + timedelta(milliseconds=250 * i) for i in range(4)]


def test_a_year_of_hourly_intervals() -> None:
    ticks = times_between(IntervalSchedule(timedelta(hours=1)), utc(2025, 1, 1), utc(2026, 1, 1))
    assert len(ticks) == 8760


# --- rrules -------------------------------------------------------------------------


def test_rrule_default_dtstart_is_2020_local_midnight() -> None:
    monthly = RRuleSchedule("FREQ=MONTHLY", "Europe/London")
    assert next_times(monthly, utc(2024, 5, 15), 2) == [utc(2024, 5, 31, 23), utc(2024, 6, 30, 23)]


def test_rrule_with_its_own_dtstart_and_count() -> None:
    schedule = RRuleSchedule("DTSTART:20240101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3")
    assert next_times(schedule, utc(2023, 1, 1), 10) == [
        utc(2024, 1, 1, 9),
        utc(2024, 1, 3, 9),
        utc(2024, 1, 8, 9),
    ]
    assert next_times(schedule, utc(2025, 1, 1), 10) == []  # finished rules just stop


def test_rrule_dtstart_with_tzid_or_z_is_an_instant() -> None:
    text = "DTSTART;TZID=America/New_York:20240101T090000\nRRULE:FREQ=DAILY;UNTIL=20240103T140000Z"
    ticks = next_times(RRuleSchedule(text, "Europe/London"), utc(2023, 1, 1), 10)
    assert ticks == [utc(2024, 1, 1, 14), utc(2024, 1, 2, 14), utc(2024, 1, 3, 14)]
    z = RRuleSchedule("DTSTART:20240601T060000Z\nRRULE:FREQ=DAILY", "Europe/London")
    assert next_times(z, utc(2024, 6, 10), 1) == [utc(2024, 6, 10, 6)]


def test_rrule_sets_with_rdate_and_exdate_in_other_zones() -> None:
    text = (
        "DTSTART:20240101T090000 RRULE:FREQ=DAILY;COUNT=3 "
        "RDATE:20240110T120000Z,20240111T120000Z "
        "EXDATE;TZID=America/New_York:20240101T040000"
    )
    ticks = next_times(RRuleSchedule(text, "Europe/London"), utc(2023, 1, 1), 10)
    assert ticks == [
        utc(2024, 1, 2, 9),
        utc(2024, 1, 3, 9),
        utc(2024, 1, 10, 12),
        utc(2024, 1, 11, 12),
    ]
    with pytest.raises(ScheduleError, match="unknown timezone 'Mars/Base'"):
        RRuleSchedule("RRULE:FREQ=DAILY\nEXDATE;TZID=Mars/Base:20240101T000000")
    with pytest.raises(ScheduleError, match="not a valid RFC 5545 rule"):
        RRuleSchedule("RRULE:FREQ=DAILY\nEXDATE;TZID=Europe/London:2024-01-01")
    with pytest.raises(ScheduleError, match="never fires"):
        RRuleSchedule("FREQ=DAILY;BYMONTH=2,4;BYMONTHDAY=31")
    with pytest.raises(ScheduleError, match="INTERVAL must be a whole number >= 1"):
        RRuleSchedule("FREQ=DAILY;INTERVAL=0")
    with pytest.raises(ScheduleError, match="INTERVAL must be"):
        RRuleSchedule("RRULE:FREQ=DAILY\nEXRULE:FREQ=WEEKLY;INTERVAL=0")


def test_an_exhausted_rrule_is_remembered_as_exhausted() -> None:
    # BYWEEKNO=60 never matches: the first query scans dateutil to the year 9999.
    rule = RRuleSchedule("DTSTART:99000101T000000\nRRULE:FREQ=YEARLY;BYWEEKNO=60")
    assert next_times(rule, utc(9000, 1, 1), 1) == []
    assert parse_rrule(rule.rrule, rule.timezone)._exhausted_from <= datetime(9000, 1, 1)
    assert next_times(rule, utc(9500, 1, 1), 1) == []
    leap = RRuleSchedule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29")
    assert next_times(leap, utc(2025, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_rrule_keeps_local_wall_time_across_dst() -> None:
    schedule = RRuleSchedule("FREQ=DAILY;BYHOUR=6;BYMINUTE=0", "Europe/London")
    ticks = times_between(schedule, utc(2024, 3, 29), utc(2024, 4, 2))
    assert ticks == [
        utc(2024, 3, 29, 6),
        utc(2024, 3, 30, 6),
        utc(2024, 3, 31, 5),
        utc(2024, 4, 1, 5),
    ]


# --- describe, dicts, flags ---------------------------------------------------------

ALL_KINDS: list[Schedule] = [
    CronSchedule("0 6 * * *", "Europe/London"),
    CronSchedule("0 0 13 * fri", day_or=False),
    CronSchedule("@hourly"),
    IntervalSchedule(timedelta(hours=1)),
    IntervalSchedule(timedelta(seconds=0.25), anchor_date=utc(2024, 1, 1, 0, 0, 0, 123456)),
    IntervalSchedule(
        timedelta(days=1), anchor_date=datetime(2024, 6, 1, 6), timezone="Europe/London"
    ),
    IntervalSchedule(timedelta(days=3, seconds=7), anchor_date=datetime(2024, 1, 1, tzinfo=LONDON)),
    RRuleSchedule("FREQ=WEEKLY;BYDAY=MO", "America/New_York"),
    RRuleSchedule("DTSTART:20240101T090000\nRRULE:FREQ=DAILY;COUNT=3"),
]


@pytest.mark.parametrize("schedule", ALL_KINDS, ids=describe)
def test_dicts_round_trip_through_json(schedule: Schedule) -> None:
    import json

    data = schedule_to_dict(schedule)
    assert data["kind"] in ("cron", "interval", "rrule")
    assert schedule_from_dict(json.loads(json.dumps(data))) == schedule


def test_describe() -> None:
    assert (
        describe(CronSchedule("0 6 * * *", "Europe/London")) == "cron '0 6 * * *' (Europe/London)"
    )
    assert describe(IntervalSchedule(timedelta(hours=1), utc(2024, 1, 1))) == (
        "every 1h from 2024-01-01T00:00:00+00:00"
    )
    assert describe(IntervalSchedule(timedelta(seconds=5400))) == (
        "every 1h30m from 2020-01-01T00:00:00+00:00"
    )
    assert describe(IntervalSchedule(timedelta(days=1), timezone="Europe/London")) == (
        "every 1d from 2020-01-01T00:00:00+00:00 (Europe/London)"
    )
    assert describe(IntervalSchedule(timedelta(seconds=90.5))) == (
        "every 1m30.5s from 2020-01-01T00:00:00+00:00"
    )
    assert describe(RRuleSchedule("FREQ=DAILY")) == "rrule 'FREQ=DAILY' (UTC)"
    assert "both match" in describe(CronSchedule("0 0 13 * fri", day_or=False))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3600", 3600), (3600, 3600), (2.5, 2.5), ("90s", 90), ("15m", 900), ("1h", 3600),
     ("1d", 86400), ("1h30m", 5400), ("1H 30M", 5400), ("1.5h", 5400), ("1w", 604800)],
)  # fmt: skip
def test_parse_schedule_interval_forms(value: str | float, seconds: float) -> None:
    schedule = parse_schedule(interval=value)
    assert schedule == IntervalSchedule(timedelta(seconds=seconds))


def test_parse_schedule_builds_each_kind() -> None:
    assert parse_schedule(cron="0 6 * * *", timezone="Europe/London") == CronSchedule(
        "0 6 * * *", "Europe/London"
    )
    assert parse_schedule(rrule="FREQ=DAILY") == RRuleSchedule("FREQ=DAILY", "UTC")
    assert parse_schedule(interval="1h", anchor="2024-01-01T00:00:00Z") == IntervalSchedule(
        timedelta(hours=1), utc(2024, 1, 1)
    )
    from_yaml = parse_schedule(interval=60, anchor=date(2024, 1, 1))  # type: ignore[arg-type]
    assert from_yaml == IntervalSchedule(timedelta(minutes=1), datetime(2024, 1, 1))
    assert parse_schedule(interval="1d", anchor="2024-01-01", timezone="Europe/London") == (
        IntervalSchedule(timedelta(days=1), datetime(2024, 1, 1), "Europe/London")
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({}, "give exactly one of --cron, --interval, --rrule (got none)"),
        ({"cron": "0 * * * *", "interval": "1h"}, "(got --cron, --interval)"),
        ({"interval": "5x"}, "--interval '5x': expected seconds"),
        ({"interval": "1h30"}, "--interval '1h30': expected seconds"),
        ({"interval": "0"}, "--interval '0': must be a positive duration"),
        ({"interval": -5}, "--interval -5: must be a positive duration"),
        ({"interval": float("nan")}, "must be a positive duration"),
        ({"interval": True}, "--interval True: expected seconds"),
        ({"interval": "1h", "anchor": "soon"}, "--anchor 'soon': expected an ISO-8601"),
        ({"cron": "0 * * * *", "anchor": "2024-01-01"}, "--anchor '2024-01-01': only applies"),
        (
            {"cron": "0 * * * *", "timezone": "Mars/Base"},
            "--timezone: unknown timezone 'Mars/Base'",
        ),
        ({"cron": "61 * * * *"}, "--cron '61 * * * *': minute 61 out of range 0-59"),
        ({"cron": 61}, "--cron 61: expected text"),
        ({"rrule": "FREQ=NEVER"}, "--rrule 'FREQ=NEVER': not a valid RFC 5545 rule"),
    ],
)
def test_parse_schedule_errors_name_the_flag_and_value(
    flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(**flags)  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute 61 out of range 0-59"),
        ("* 24 * * *", "hour 24 out of range 0-23"),
        ("* * 0 * *", "day-of-month 0 out of range 1-31"),
        ("* * * 13 *", "month 13 out of range 1-12"),
        ("* * * * 8", "day-of-week 8 out of range 0-7"),
        ("* * *", "expected 5 fields"),
        ("* * * * * *", "got 6"),
        ("", "got 0"),
        ("*/0 * * * *", "step '0' must be a positive whole number"),
        ("*/x * * * *", "step 'x'"),
        ("10-5 * * * *", "range '10-5' runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("* * * * jan", "day-of-week value 'jan' is not a number or a known name"),
        ("* * * mon *", "month value 'mon'"),
        ("@every5m", "unknown macro"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ],
)
def test_cron_errors_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        CronSchedule(expression)
    assert f"cron {expression!r}" in str(caught.value)
    assert message in str(caught.value)


def test_constructors_reject_bad_values() -> None:
    with pytest.raises(ScheduleError, match="unknown timezone 'Nowhere/City'"):
        CronSchedule("0 * * * *", "Nowhere/City")
    with pytest.raises(ScheduleError, match="day_or must be true or false"):
        CronSchedule("0 * * * *", day_or="yes")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="must be a positive timedelta"):
        IntervalSchedule(timedelta(0))
    with pytest.raises(ScheduleError, match="must be a positive timedelta"):
        IntervalSchedule(3600)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="anchor_date must be a datetime"):
        IntervalSchedule(timedelta(hours=1), "2024-01-01")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="non-empty RFC 5545 rule"):
        RRuleSchedule("  ")
    with pytest.raises(ScheduleError, match="unknown timezone 'Nowhere/X'"):
        RRuleSchedule("DTSTART;TZID=Nowhere/X:20240101T000000\nRRULE:FREQ=DAILY")
    with pytest.raises(ScheduleError, match="not a schedule"):
        validate_schedule("0 * * * *")  # type: ignore[arg-type]


def test_calls_reject_naive_datetimes_and_bad_counts() -> None:
    hourly = CronSchedule("0 * * * *")
    with pytest.raises(ScheduleError, match="start must be a timezone-aware datetime"):
        times_between(hourly, datetime(2024, 1, 1), utc(2024, 1, 2))
    with pytest.raises(ScheduleError, match="end must be a timezone-aware"):
        times_between(hourly, utc(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(ScheduleError, match="limit must be"):
        times_between(hourly, utc(2024, 1, 1), utc(2024, 1, 2), limit=-1)
    with pytest.raises(ScheduleError, match="count must be"):
        next_times(hourly, utc(2024, 1, 1), -1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "weekly"}, "schedule kind 'weekly' is not one of cron, interval, rrule"),
        ({"cron": "0 * * * *", "rrule": "FREQ=DAILY"}, "schedule kind None"),
        ({"timezone": "UTC"}, "schedule kind None"),
        ({"kind": "cron"}, "cron schedule is missing cron"),
        ({"kind": "cron", "cron": "0 * * * *", "tz": "UTC"}, "unknown keys: tz"),
        ({"kind": "cron", "cron": 5}, "cron must be a string"),
        ({"kind": "cron", "cron": "0 * * * *", "day_or": "no"}, "day_or must be true or false"),
        ({"kind": "cron", "cron": "0 * * * *", "timezone": 3}, "timezone must be a string"),
        ({"kind": "interval", "interval": "soon"}, "interval schedule interval 'soon'"),
        ({"kind": "interval", "interval": 60, "anchor_date": "x"}, "anchor_date 'x'"),
        ({"kind": "rrule", "rrule": "FREQ=NOPE"}, "not a valid RFC 5545 rule"),
    ],
)
def test_schedule_from_dict_rejects_bad_input(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_dict(data)
    assert message in str(caught.value)


def test_schedule_error_is_a_value_error_and_a_sluice_error() -> None:
    with pytest.raises(ValueError):
        CronSchedule("nope")
    assert issubclass(ScheduleError, SluiceError)


def test_importing_stays_light() -> None:
    script = (
        "import sys, sluice\n"
        "assert 'sluice.deployments' not in sys.modules\n"
        "from sluice.scheduling.schedules import CronSchedule, next_times\n"
        "from datetime import datetime, timezone\n"
        "next_times(CronSchedule('0 * * * *', 'Europe/London'), datetime.now(timezone.utc), 3)\n"
        "heavy = ('dateutil', 'pydantic', 'sqlalchemy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "rule",
    [
        "DTSTART:20200101T093000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
        "DTSTART:20200103T000000\nRRULE:FREQ=DAILY;INTERVAL=3;BYHOUR=8,20;BYMINUTE=15",
        "DTSTART:20250601T001700\nRRULE:FREQ=MINUTELY;INTERVAL=7;BYHOUR=9",
        "DTSTART:20200101T000000\nRRULE:FREQ=HOURLY;INTERVAL=5;BYSETPOS=1;BYMINUTE=10,40",
        "FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20260101T000000",
    ],
)
def test_rrule_far_from_dtstart_matches_dateutils_own_expansion(rule: str) -> None:
    """Far from DTSTART the rule is fast-forwarded; it must give what a full walk
    from DTSTART gives."""
    from dateutil.rrule import rrulestr

    start, end = datetime(2025, 11, 3, 7, 41), datetime(2025, 11, 30)
    full = rrulestr(rule, dtstart=datetime(2020, 1, 1), ignoretz=True)
    expected = [t.replace(tzinfo=UTC) for t in full.between(start, end, inc=True) if t < end]
    assert expected
    assert (
        times_between(RRuleSchedule(rule), start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
        == expected
    )


def _random_field(rng: random.Random, low: int, high: int) -> tuple[str, set[int]]:
    """A random cron field and the values it must allow, computed without the parser."""
    shape = rng.choice(["star", "step", "range", "range-step", "list", "value"])
    if shape == "star":
        return "*", set(range(low, high + 1))
    if shape == "step":
        step = rng.randint(2, 5)
        return f"*/{step}", set(range(low, high + 1, step))
    a = rng.randint(low, high)
    b = rng.randint(a, high)
    if shape == "range":
        return f"{a}-{b}", set(range(a, b + 1))
    if shape == "range-step":
        step = rng.randint(1, 4)
        return f"{a}-{b}/{step}", set(range(a, b + 1, step))
    if shape == "list":
        values = sorted(rng.sample(range(low, high + 1), k=min(3, high - low + 1)))
        return ",".join(map(str, values)), set(values)
    return str(a), {a}


def test_random_crons_against_a_day_by_day_reference() -> None:
    rng = random.Random(20240501)
    start = datetime(2023, 12, 1)
    days = [start + timedelta(days=i) for i in range(800)]  # two leap-year Februaries ahead
    for _ in range(150):
        minute_text, minutes = _random_field(rng, 0, 59)
        hour_text, hours = _random_field(rng, 0, 23)
        dom_text, doms = _random_field(rng, 1, 31)
        month_text, months = _random_field(rng, 1, 12)
        dow_text, dows = _random_field(rng, 0, 6)
        day_or = rng.random() < 0.5
        expression = f"{minute_text} {hour_text} {dom_text} {month_text} {dow_text}"
        use_or = day_or and not dom_text.startswith("*") and not dow_text.startswith("*")
        expected = []
        for day in days:
            in_dom = day.day in doms
            in_dow = (day.weekday() + 1) % 7 in dows
            if day.month in months and ((in_dom or in_dow) if use_or else (in_dom and in_dow)):
                expected += [
                    day.replace(hour=h, minute=m, tzinfo=UTC)
                    for h in sorted(hours)
                    for m in sorted(minutes)
                ]
        try:
            schedule = CronSchedule(expression, day_or=day_or)
        except ScheduleError as exc:
            assert "never fires" in str(exc), expression
            continue
        got = times_between(
            schedule, days[0].replace(tzinfo=UTC), days[-1].replace(tzinfo=UTC) + timedelta(days=1)
        )
        assert got == expected, (expression, day_or)
