"""RFC 5545 recurrence rules, evaluated in the wall-clock time of one timezone.

Parsing and expansion are python-dateutil's (imported here only when a rule is used).
A rule runs on naive wall-clock times of the schedule's timezone, so ``FREQ=DAILY;
BYHOUR=6`` stays at 06:00 local across DST; the DST rules of
:mod:`sluice.scheduling.wallclock` then map those times to instants.

DTSTART defaults to 2020-01-01 00:00 local. A DTSTART, RDATE or EXDATE value given
with ``TZID=`` or a trailing ``Z`` names an instant: it is converted to the schedule's
timezone first, and so is an ``UNTIL=...Z``. Plain (floating) values are read as
local wall-clock times.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sluice.errors import ScheduleError
from sluice.scheduling.wallclock import UTC, load_zone

DEFAULT_DTSTART = datetime(2020, 1, 1)

# A DTSTART / RDATE / EXDATE property (lines may also be separated by spaces).
_DATED = re.compile(
    r"(?<!\S)(?P<name>DTSTART|RDATE|EXDATE)(?P<params>;[^:\s]*)?:(?P<values>\S+)", re.IGNORECASE
)
_TZID = re.compile(r"TZID=(?P<tzid>[^;:]+)", re.IGNORECASE)
_UNTIL_UTC = re.compile(r"UNTIL=(?P<value>\d{8}T\d{6})Z", re.IGNORECASE)


class RRuleSpec:
    """A parsed rule: ascending naive wall-clock times from any start."""

    def __init__(self, text: str, rule: Any) -> None:
        self._text = text
        self._rule = rule
        # From here on the rule has no occurrences. Finding that out can mean dateutil
        # scanning to the year 9999 (seconds), so it is remembered.
        self._exhausted_from = datetime.max

    def wall_times(self, start: datetime) -> Iterator[datetime]:
        """Wall-clock times at or after the naive ``start``, ascending."""
        if start >= self._exhausted_from:
            return
        try:
            yield from self._fast_forward(start).xafter(start, inc=True)
        except (TypeError, ValueError, ZeroDivisionError) as exc:  # some checks are lazy
            raise ScheduleError(f"rrule {self._text!r}: cannot be expanded ({exc})") from None
        self._exhausted_from = min(self._exhausted_from, start)

    def _fast_forward(self, start: datetime) -> Any:
        """The same rule with DTSTART moved forward by whole periods to just before
        ``start``: dateutil always expands from DTSTART, so a minutely rule from 2020
        would otherwise walk millions of minutes on every call.

        Safe only for a single rule without COUNT (COUNT counts from the original
        DTSTART) whose period is a fixed length: moving by whole periods keeps the
        weekday, time of day and period alignment that BYxxx parts and their defaults
        depend on. Monthly and yearly rules are cheap to walk and are left alone.
        """
        from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, WEEKLY, rrule

        rule = self._rule
        if not isinstance(rule, rrule) or rule._count is not None:
            return rule
        unit = {WEEKLY: 604_800, DAILY: 86_400, HOURLY: 3_600, MINUTELY: 60, SECONDLY: 1}
        if rule._freq not in unit:
            return rule
        period = timedelta(seconds=unit[rule._freq] * rule._interval)
        periods = (start - rule._dtstart) // period - 1
        if periods <= 0:
            return rule
        return rule.replace(dtstart=rule._dtstart + period * periods)


@functools.lru_cache(maxsize=256)
def parse_rrule(text: str, timezone: str) -> RRuleSpec:
    """Parse ``text`` for evaluation in ``timezone``.

    Raises:
        ScheduleError: naming the rule and what is wrong with it.
    """
    from dateutil.rrule import rrule, rrulestr

    zone = load_zone(timezone, f"rrule {text!r}")
    try:
        floating = _UNTIL_UTC.sub(
            lambda m: f"UNTIL={_to_local(m['value'], 'UTC', zone, text)}", text
        )
        floating = _DATED.sub(lambda m: _floating_property(m, zone, text), floating)
        rule = rrulestr(floating, dtstart=DEFAULT_DTSTART, ignoretz=True)
    except ScheduleError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ScheduleError(f"rrule {text!r}: not a valid RFC 5545 rule ({exc})") from None
    rules = [rule] if isinstance(rule, rrule) else [*rule._rrule, *rule._exrule]
    if any(r._interval < 1 for r in rules):
        raise ScheduleError(f"rrule {text!r}: INTERVAL must be a whole number >= 1")
    if isinstance(rule, rrule) and _day_never_exists(rule):
        raise ScheduleError(f"rrule {text!r}: never fires (no BYMONTHDAY exists in its months)")
    return RRuleSpec(text, rule)


def _day_never_exists(rule: Any) -> bool:
    """Whether BYMONTHDAY names only days its BYMONTH months lack (``BYMONTH=2;
    BYMONTHDAY=30``): dateutil would scan to the year 9999 looking for one."""
    if not rule._bymonthday or rule._bynmonthday or rule._byyearday or rule._byweekno:
        return False
    months = rule._bymonth or range(1, 13)
    return all(day > calendar.monthrange(2000, m)[1] for m in months for day in rule._bymonthday)


def _floating_property(match: re.Match[str], zone: ZoneInfo, rule: str) -> str:
    """A DTSTART/RDATE/EXDATE property with its values as floating wall-clock times in
    ``zone`` (dateutil would otherwise mix naive and aware datetimes and fail later)."""
    tzid = _TZID.search(match["params"] or "")
    values = []
    for value in match["values"].split(","):
        if value[-1:] in ("Z", "z"):
            values.append(_to_local(value[:-1], "UTC", zone, rule))
        else:
            values.append(_to_local(value, tzid["tzid"] if tzid else None, zone, rule))
    return f"{match['name']}:{','.join(values)}"


def _to_local(value: str, tzid: str | None, zone: ZoneInfo, rule: str) -> str:
    """``value`` (an RFC 5545 date or date-time) as a floating wall-clock time in
    ``zone``; unchanged when it has no timezone of its own."""
    if not tzid:
        return value
    source = UTC if tzid.upper() == "UTC" else load_zone(tzid, f"rrule {rule!r} TZID")
    if "T" not in value.upper():
        value += "T000000"
    moment = datetime.strptime(value.upper(), "%Y%m%dT%H%M%S").replace(tzinfo=source)
    return moment.astimezone(zone).strftime("%Y%m%dT%H%M%S")
