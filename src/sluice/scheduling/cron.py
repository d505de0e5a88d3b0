"""Five-field cron expressions: parsing and matching in local wall-clock time.

This module knows nothing about timezones: it yields naive wall-clock datetimes that
match an expression, in ascending order, skipping whole months, days and hours that
cannot match (a year of ``0 2 * * *`` is 365 steps, not 525,600). Mapping wall-clock
times to instants across DST changes is :mod:`sluice.scheduling.wallclock`'s job.

Grammar per field: ``*``, ``N``, ``A-B``, any of those followed by ``/STEP``, and
comma-separated lists of them. ``N/STEP`` means ``N-MAX/STEP``. Months and weekdays
take English three-letter names (``jan``, ``mon``), case-insensitive; weekday ``7`` is
Sunday like ``0``. Macros: ``@hourly @daily @midnight @weekly @monthly @yearly
@annually``.

Day matching follows classic (Vixie) cron: a field is *restricted* when its text does
not start with ``*``. When both day fields are restricted, a day matches if *either*
matches (``day_or=True``) or only if *both* match (``day_or=False``); otherwise both
must match, so ``0 0 * * */2`` runs on Sunday, Tuesday, Thursday and Saturday.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sluice.errors import ScheduleError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 7, _DAY_NAMES),
)

# The last year a datetime can hold; iteration stops there instead of running forever.
_MAX_YEAR = 9999


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression: the sorted values each field allows."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    dom_restricted: bool
    dow_restricted: bool
    hour_is_star: bool  # hour field is ``*`` or ``*/N``: it is periodic in absolute time
    day_or: bool

    def matching_days(self, year: int, month: int) -> list[int]:
        """The days of ``year-month`` that match the two day fields, ascending."""
        last = calendar.monthrange(year, month)[1]
        by_day = [d for d in self.days if d <= last]
        use_or = self.dom_restricted and self.dow_restricted and self.day_or
        if len(self.weekdays) == 7:  # every weekday allowed: OR lets every day through
            return list(range(1, last + 1)) if use_or else by_day
        # calendar.weekday counts Monday = 0; cron counts Sunday = 0.
        weekday_of_first = (calendar.weekday(year, month, 1) + 1) % 7
        by_weekday = [
            d for d in range(1, last + 1) if (weekday_of_first + d - 1) % 7 in self.weekdays
        ]
        if use_or:
            return sorted(set(by_day).union(by_weekday))
        return sorted(set(by_day).intersection(by_weekday))

    def wall_times(self, start: datetime) -> Iterator[datetime]:
        """Naive wall-clock times at or after ``start`` (naive) that match, ascending."""
        first = (start.year, start.month, start.day, start.hour, start.minute)
        if start.second or start.microsecond:
            first = _next_minute(start)
        year0, month0, day0, hour0, minute0 = first
        for year in range(year0, _MAX_YEAR + 1):
            months = self.months
            if year == year0:
                months = months[bisect.bisect_left(months, month0) :]
            for month in months:
                same_month = year == year0 and month == month0
                for day in self.matching_days(year, month):
                    if same_month and day < day0:
                        continue
                    same_day = same_month and day == day0
                    hours = (
                        self.hours[bisect.bisect_left(self.hours, hour0) :]
                        if same_day
                        else self.hours
                    )
                    for hour in hours:
                        minutes = self.minutes
                        if same_day and hour == hour0:
                            minutes = minutes[bisect.bisect_left(minutes, minute0) :]
                        for minute in minutes:
                            yield datetime(year, month, day, hour, minute)


def _next_minute(moment: datetime) -> tuple[int, int, int, int, int]:
    up = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return (up.year, up.month, up.day, up.hour, up.minute)


def parse_cron(expression: str, *, day_or: bool = True) -> CronSpec:
    """Parse a 5-field cron expression or macro.

    Raises:
        ScheduleError: naming the expression and what is wrong with it.
    """
    if not isinstance(expression, str):
        raise ScheduleError(f"cron {expression!r}: expected a string")
    text = expression.strip()
    text = MACROS.get(text.lower(), text)
    if text.startswith("@"):
        known = ", ".join(sorted(MACROS))
        raise ScheduleError(f"cron {expression!r}: unknown macro (known: {known})")
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(
            f"cron {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(parts)}"
        )
    values = [
        _parse_field(expression, part, field) for part, field in zip(parts, _FIELDS, strict=True)
    ]
    minutes, hours, days, months, weekdays = values
    spec = CronSpec(
        expression=expression,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=tuple(sorted(days)),
        months=tuple(sorted(months)),
        weekdays=frozenset(d % 7 for d in weekdays),
        dom_restricted=not parts[2].startswith("*"),
        dow_restricted=not parts[4].startswith("*"),
        hour_is_star=parts[1].startswith("*"),
        day_or=day_or,
    )
    _check_can_fire(spec)
    return spec


def _parse_field(expression: str, text: str, field: _Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(expression, item, field))
    return values


def _parse_item(expression: str, item: str, field: _Field) -> range:
    where = f"cron {expression!r}: {field.name}"
    if not item:
        raise ScheduleError(f"{where} has an empty list item")
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ScheduleError(f"{where} step {step_text!r} must be a positive whole number")
        step = int(step_text)
    if base == "*":
        low, high = field.low, field.high
    elif "-" in base:
        low_text, _, high_text = base.partition("-")
        low = _parse_value(where, low_text, field)
        high = _parse_value(where, high_text, field)
        if low > high:
            raise ScheduleError(f"{where} range {base!r} runs backwards")
    else:
        low = _parse_value(where, base, field)
        # "N/STEP" means from N to the end of the field, stepping; plain "N" is just N.
        high = field.high if slash else low
    if field.name == "day-of-week" and base == "*":
        high = 6  # "*" covers Sunday once, as 0; 7 is only an alias
    return range(low, high + 1, step)


def _parse_value(where: str, text: str, field: _Field) -> int:
    key = text.lower()
    if key in field.names:
        return field.names[key]
    if not text.isdigit():
        raise ScheduleError(f"{where} value {text!r} is not a number or a known name")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ScheduleError(f"{where} {value} out of range {field.low}-{field.high}")
    return value


def _check_can_fire(spec: CronSpec) -> None:
    """Reject expressions no calendar date satisfies (``0 0 30 2 *``), which would
    otherwise make a search for the next tick run to the year 9999."""
    if not spec.dom_restricted or (spec.dow_restricted and spec.day_or):
        return
    # Every valid date falls on every weekday somewhere in the 400-year Gregorian cycle,
    # so a day-of-month that exists in one of the months is enough, even with AND.
    longest = {m: calendar.monthrange(2000, m)[1] for m in spec.months}  # 2000: leap year
    if any(day <= longest[m] for m in spec.months for day in spec.days):
        return
    raise ScheduleError(
        f"cron {spec.expression!r}: never fires (no day-of-month in it exists in its months)"
    )
