"""Schedules of a deployment — cron, interval, rrule — as validated data and pure math.

Nothing here reads a clock or does I/O: "now" is always an argument, every instant in
and out is a timezone-aware datetime, and every tick comes back in UTC.

Kinds:

* :class:`CronSchedule` — 5-field cron (see :mod:`sluice.scheduling.cron` for the
  grammar), matched in the wall-clock time of ``timezone``.
* :class:`IntervalSchedule` — ticks at ``anchor_date + k * interval`` for every whole
  ``k`` (the anchor fixes the phase; it is not a start). The default anchor is
  2020-01-01 00:00 in ``timezone``; a naive anchor is a wall-clock time there.
  Intervals of whole days keep the local wall-clock time across DST (daily at 06:00
  stays 06:00 local); other intervals are absolute elapsed time.
* :class:`RRuleSchedule` — an RFC 5545 rule (see :mod:`sluice.scheduling.rrules`),
  expanded in the wall-clock time of ``timezone``.

DST rules, shared by every kind (:mod:`sluice.scheduling.wallclock`):

* A wall-clock time inside a spring-forward gap runs once, at the first instant after
  the gap (London 01:30 on the last Sunday of March runs at 02:00 BST).
* A wall-clock time that occurs twice at fall-back runs once, at its first occurrence
  (London 01:30 on the last Sunday of October runs at 01:30 BST) — except for cron
  expressions whose hour field is ``*`` or ``*/N`` (``0 * * * *``, ``*/30 * * * *``):
  those fire in both occurrences, because they are periodic in absolute time.
* A whole-day interval whose anchor is the second occurrence of such a time keeps
  that choice on every fall-back day.

:func:`plan_runs` decides what a scheduler should create now, given what it created
before; see its docstring for missed runs, catch-up and the grace period.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeAlias
from zoneinfo import ZoneInfo

from sluice.errors import ScheduleError
from sluice.scheduling.cron import CronSpec, parse_cron
from sluice.scheduling.durations import duration_seconds, format_duration, parse_duration
from sluice.scheduling.rrules import parse_rrule
from sluice.scheduling.wallclock import (
    instants,
    load_zone,
    local_wall,
    require_aware,
    resolve,
)

__all__ = [
    "OPTION_KEYS",
    "CronSchedule",
    "IntervalSchedule",
    "RRuleSchedule",
    "RunPlan",
    "Schedule",
    "describe",
    "next_ticks",
    "next_times",
    "parse_schedule",
    "plan_runs",
    "schedule_from_dict",
    "schedule_to_dict",
    "times_between",
    "validate_schedule",
]

DEFAULT_ANCHOR = datetime(2020, 1, 1)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CronSchedule:
    """Fires when the wall-clock time in ``timezone`` matches the cron expression.

    ``day_or`` picks how a restricted day-of-month and day-of-week combine: either
    matches (classic cron, the default) or both must match.
    """

    cron: str
    timezone: str = "UTC"
    day_or: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.day_or, bool):
            raise ScheduleError(f"cron {self.cron!r}: day_or must be true or false")
        _cron_spec(self.cron, self.day_or)
        load_zone(self.timezone, f"cron {self.cron!r}")


@dataclass(frozen=True)
class IntervalSchedule:
    """Fires every ``interval``, in phase with ``anchor_date``."""

    interval: timedelta
    anchor_date: datetime | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        where = f"interval {self.interval!r}"
        if not isinstance(self.interval, timedelta) or self.interval <= timedelta(0):
            raise ScheduleError(f"{where}: must be a positive timedelta")
        if self.anchor_date is not None and not isinstance(self.anchor_date, datetime):
            raise ScheduleError(
                f"{where}: anchor_date must be a datetime, got {self.anchor_date!r}"
            )
        load_zone(self.timezone, where)


@dataclass(frozen=True)
class RRuleSchedule:
    """Fires on the occurrences of an RFC 5545 rule, in the wall-clock time of ``timezone``."""

    rrule: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.rrule, str) or not self.rrule.strip():
            raise ScheduleError(f"rrule {self.rrule!r}: expected a non-empty RFC 5545 rule")
        load_zone(self.timezone, f"rrule {self.rrule!r}")
        parse_rrule(self.rrule, self.timezone)


Schedule: TypeAlias = CronSchedule | IntervalSchedule | RRuleSchedule


@functools.lru_cache(maxsize=256)
def _cron_spec(expression: str, day_or: bool) -> CronSpec:
    return parse_cron(expression, day_or=day_or)


def validate_schedule(s: Schedule) -> Schedule:
    """``s`` itself, checked (constructors check too; this catches non-schedules).

    Raises:
        ScheduleError: what is wrong, naming the schedule.
    """
    if not isinstance(s, (CronSchedule, IntervalSchedule, RRuleSchedule)):
        raise ScheduleError(f"not a schedule: {s!r}")
    s.__post_init__()
    return s


# --- ticks -------------------------------------------------------------------------


def times_between(
    s: Schedule, start: datetime, end: datetime, *, limit: int | None = None
) -> list[datetime]:
    """Every tick ``t`` with ``start <= t < end``, ascending, as aware UTC datetimes.

    Args:
        s: the schedule.
        start: aware datetime, inclusive.
        end: aware datetime, exclusive.
        limit: stop after this many ticks (None: no limit).
    """
    require_aware(start, "start")
    require_aware(end, "end")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ScheduleError(f"limit must be a whole number >= 0 or None, got {limit!r}")
    if end <= start:
        return []
    found: list[datetime] = []
    if limit == 0:
        return found
    for tick in _ticks_from(s, start):
        if tick >= end:
            break
        found.append(tick)
        if limit is not None and len(found) >= limit:
            break
    return found


def next_times(s: Schedule, after: datetime, count: int) -> list[datetime]:
    """The first ``count`` ticks strictly after the aware ``after``, as UTC datetimes."""
    require_aware(after, "after")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ScheduleError(f"count must be a whole number >= 0, got {count!r}")
    ticks = (t for t in _ticks_from(s, after) if t > after)
    return list(itertools.islice(ticks, count))


def next_ticks(schedules: Sequence[Schedule], after: datetime, count: int) -> list[datetime]:
    """The first ``count`` ticks of all ``schedules`` together strictly after ``after``
    (a tick two schedules share counts once), ascending UTC datetimes."""
    ticks: set[datetime] = set()
    for s in schedules:
        ticks.update(next_times(s, after, count))
    return sorted(ticks)[:count]


def _ticks_from(s: Schedule, start: datetime) -> Iterator[datetime]:
    """Ticks at or after ``start``, ascending UTC, until the calendar runs out (9999)."""
    validate_schedule(s)
    zone = load_zone(s.timezone, "schedule")
    if isinstance(s, CronSchedule):
        spec = _cron_spec(s.cron, s.day_or)
        walls = spec.wall_times(_look_back(start, zone))
        ticks = instants(walls, zone, both_folds=spec.hour_is_star)
    elif isinstance(s, IntervalSchedule):
        ticks = _interval_ticks(s, start, zone)
    else:
        walls = parse_rrule(s.rrule, s.timezone).wall_times(_look_back(start, zone))
        ticks = instants(walls, zone)
    try:
        for tick in ticks:
            if tick >= start:
                yield tick
    except OverflowError:  # past datetime.max: the schedule simply has no more ticks
        return


def _look_back(start: datetime, zone: ZoneInfo) -> datetime:
    """Where to start scanning wall-clock times so nothing at or after ``start`` is
    missed. Near a DST change, the second occurrence or the gap time of a wall time
    before ``start``'s can map to an instant after ``start``. No change moves a clock
    by a day, so scanning from a day back is enough, and needed only when the offset
    changes within a day either side."""
    wall = local_wall(start, zone)
    try:
        day_before, day_after = start - _DAY, start + _DAY
    except OverflowError:
        return wall
    offsets = {moment.astimezone(zone).utcoffset() for moment in (day_before, start, day_after)}
    return wall if len(offsets) == 1 else local_wall(day_before, zone)


def _interval_ticks(s: IntervalSchedule, start: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    anchor_wall, fold = _anchor_wall(s, zone)
    if s.interval % _DAY == timedelta(0):
        # Whole days step the wall-clock date, so 06:00 stays 06:00 local across DST.
        days = s.interval.days
        behind = (local_wall(start, zone) - anchor_wall).days // days - 1
        walls = (anchor_wall + s.interval * k for k in itertools.count(behind))
        yield from instants(walls, zone, fold=fold)
        return
    anchor = resolve(anchor_wall, zone, fold=fold)
    step = s.interval // timedelta(microseconds=1)
    elapsed = (start - anchor) // timedelta(microseconds=1)
    tick = anchor + s.interval * -(-elapsed // step)  # first tick at or after start
    while True:
        yield tick
        tick += s.interval


def _anchor_wall(s: IntervalSchedule, zone: ZoneInfo) -> tuple[datetime, int]:
    """The anchor as a naive wall-clock time in ``zone`` and which occurrence it is."""
    if s.anchor_date is None:
        return DEFAULT_ANCHOR, 0
    if s.anchor_date.utcoffset() is None:
        return s.anchor_date.replace(fold=0), s.anchor_date.fold
    local = s.anchor_date.astimezone(zone)
    return local.replace(tzinfo=None, fold=0), local.fold


def _anchor_instant(s: IntervalSchedule) -> datetime:
    zone = load_zone(s.timezone, "schedule")
    wall, fold = _anchor_wall(s, zone)
    return resolve(wall, zone, fold=fold)


# --- text and dicts -----------------------------------------------------------------


def describe(s: Schedule) -> str:
    """One line for people: ``cron '0 6 * * *' (Europe/London)``,
    ``every 1h from 2024-01-01T00:00:00+00:00``, ``rrule 'FREQ=DAILY' (UTC)``."""
    validate_schedule(s)
    if isinstance(s, CronSchedule):
        days = "" if s.day_or else ", day-of-month and day-of-week must both match"
        return f"cron {s.cron!r} ({s.timezone}{days})"
    if isinstance(s, IntervalSchedule):
        zone = load_zone(s.timezone, "schedule")
        anchor = _anchor_instant(s).astimezone(zone).isoformat()
        where = "" if s.timezone == "UTC" else f" ({s.timezone})"
        return f"every {format_duration(s.interval)} from {anchor}{where}"
    return f"rrule {s.rrule!r} ({s.timezone})"


def schedule_to_dict(s: Schedule) -> dict[str, object]:
    """JSON-safe dict with a ``kind`` key (``cron``, ``interval``, ``rrule``);
    ``interval`` is in seconds, ``anchor_date`` ISO-8601 or null."""
    validate_schedule(s)
    if isinstance(s, CronSchedule):
        return {"kind": "cron", "cron": s.cron, "timezone": s.timezone, "day_or": s.day_or}
    if isinstance(s, IntervalSchedule):
        anchor = None if s.anchor_date is None else s.anchor_date.isoformat()
        return {
            "kind": "interval",
            "interval": duration_seconds(s.interval),
            "anchor_date": anchor,
            "timezone": s.timezone,
        }
    return {"kind": "rrule", "rrule": s.rrule, "timezone": s.timezone}


_DICT_KEYS = {
    "cron": ({"cron"}, {"timezone", "day_or"}),
    "interval": ({"interval"}, {"anchor_date", "timezone"}),
    "rrule": ({"rrule"}, {"timezone"}),
}
#: keys a stored schedule may carry besides its tick math (read by
#: :mod:`sluice.scheduling.schedule_options`; ignored here)
OPTION_KEYS = frozenset({"parameters", "active", "slug"})


def schedule_from_dict(d: Mapping[str, object]) -> Schedule:
    """The schedule :func:`schedule_to_dict` described (options such as
    ``parameters`` are read by :mod:`sluice.scheduling.schedule_options`).
    Without a ``kind``, the one key of ``cron``, ``interval``, ``rrule`` present
    says it, as in Prefect's ``prefect.yaml``.

    Raises:
        ScheduleError: unknown kind, missing or unknown keys, bad values.
    """
    if not isinstance(d, Mapping):
        raise ScheduleError(f"a schedule must be a mapping with a 'kind', got {d!r}")
    kind = d.get("kind", _kind_of(d))
    if not isinstance(kind, str) or kind not in _DICT_KEYS:
        raise ScheduleError(f"schedule kind {kind!r} is not one of cron, interval, rrule")
    required, optional = _DICT_KEYS[kind]
    keys = set(d) - {"kind"} - OPTION_KEYS
    if required - keys:
        raise ScheduleError(f"{kind} schedule is missing {', '.join(sorted(required - keys))}")
    if keys - required - optional:
        unknown = ", ".join(sorted(map(str, keys - required - optional)))
        raise ScheduleError(f"{kind} schedule has unknown keys: {unknown}")
    timezone = _text(d.get("timezone", "UTC"), f"{kind} schedule timezone")
    if kind == "cron":
        day_or = d.get("day_or", True)
        if not isinstance(day_or, bool):
            raise ScheduleError(f"cron schedule day_or must be true or false, got {day_or!r}")
        return CronSchedule(cron=_text(d["cron"], "cron"), timezone=timezone, day_or=day_or)
    if kind == "rrule":
        return RRuleSchedule(rrule=_text(d["rrule"], "rrule"), timezone=timezone)
    anchor = d.get("anchor_date")
    return IntervalSchedule(
        interval=parse_duration(d["interval"], "interval schedule interval"),
        anchor_date=None if anchor is None else _parse_anchor(anchor, "anchor_date"),
        timezone=timezone,
    )


def _kind_of(d: Mapping[str, object]) -> str | None:
    """The kind of a dict without one, as Prefect's ``prefect.yaml`` writes schedules
    (``{cron: "0 6 * * *", timezone: ...}``): the one kind key present, if exactly one."""
    present = [kind for kind in _DICT_KEYS if kind in d]
    return present[0] if len(present) == 1 else None


def _text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ScheduleError(f"{key} must be a string, got {value!r}")
    return value


def _parse_anchor(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):  # YAML reads an unquoted 2024-01-01 as a date
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise ScheduleError(f"{where} {value!r}: expected an ISO-8601 date-time")
    text = value.strip()
    if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not know "Z"
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(
            f"{where} {value!r}: expected an ISO-8601 date-time like 2024-01-01T06:00:00+00:00"
        ) from None


def parse_schedule(
    *,
    cron: str | None = None,
    interval: str | float | None = None,
    anchor: str | None = None,
    rrule: str | None = None,
    timezone: str | None = None,
) -> Schedule:
    """One schedule from CLI flags or a ``sluice.yaml`` entry.

    Exactly one of ``cron``, ``interval`` (seconds, or ``90s 15m 1h 1d 1h30m``) and
    ``rrule``; ``anchor`` (ISO-8601 text, or the date / datetime YAML makes of it) only
    with ``interval``; ``timezone`` an IANA name (default UTC).

    Raises:
        ScheduleError: naming the flag and the value at fault.
    """
    given = [
        flag
        for flag, value in (("--cron", cron), ("--interval", interval), ("--rrule", rrule))
        if value is not None
    ]
    if len(given) != 1:
        got = ", ".join(given) if given else "none"
        raise ScheduleError(f"give exactly one of --cron, --interval, --rrule (got {got})")
    if anchor is not None and interval is None:
        raise ScheduleError(f"--anchor {anchor!r}: only applies to --interval")
    zone_name = "UTC" if timezone is None else timezone
    load_zone(zone_name, "--timezone")
    try:
        if cron is not None:
            return CronSchedule(cron=_flag_text(cron, "--cron"), timezone=zone_name)
        if rrule is not None:
            return RRuleSchedule(rrule=_flag_text(rrule, "--rrule"), timezone=zone_name)
    except ScheduleError as exc:
        # The constructors say "cron '...': ..."; on the command line, name the flag.
        message = str(exc)
        raise ScheduleError(message if message.startswith("--") else f"--{message}") from None
    return IntervalSchedule(
        interval=parse_duration(interval, "--interval"),
        anchor_date=None if anchor is None else _parse_anchor(anchor, "--anchor"),
        timezone=zone_name,
    )


def _flag_text(value: object, flag: str) -> str:
    if not isinstance(value, str):
        raise ScheduleError(f"{flag} {value!r}: expected text")
    return value


# --- planning -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """What a scheduler should do now: runs to create, missed ticks to record as skipped."""

    to_create: list[datetime]
    skipped: list[datetime]


def plan_runs(
    schedules: Sequence[Schedule],
    *,
    now: datetime,
    planned_until: datetime | None,
    horizon: timedelta,
    max_runs: int,
    catchup: bool,
    grace: timedelta,
) -> RunPlan:
    """Which scheduled times a scheduler should create runs for at ``now``.

    Ticks of all ``schedules`` are merged and de-duplicated. Ticks at or before
    ``planned_until`` (the latest scheduled time already created) are never planned
    again. With ``planned_until=None`` (never scheduled) planning starts at ``now`` and
    nothing counts as missed. Otherwise:

    * missed — ticks in ``(planned_until, now - grace)``: created when ``catchup``,
      else returned in ``skipped`` for the caller to record (no stampede after downtime);
    * upcoming — ticks in ``[now - grace, now + horizon)`` after ``planned_until``:
      created, keeping at most ``max_runs`` upcoming runs in all, counting those
      already created (upcoming ticks up to ``planned_until``).

    Both lists are ascending aware UTC datetimes. The caller records both and then
    passes the latest time of either as the next ``planned_until``, so a skipped tick
    is reported once.
    """
    require_aware(now, "now")
    if planned_until is not None:
        require_aware(planned_until, "planned_until")
    for name, value in (("horizon", horizon), ("grace", grace)):
        if not isinstance(value, timedelta) or value < timedelta(0):
            raise ScheduleError(f"{name} must be a timedelta >= 0, got {value!r}")
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 0:
        raise ScheduleError(f"max_runs must be a whole number >= 0, got {max_runs!r}")
    for s in schedules:
        validate_schedule(s)

    upcoming_start = now if planned_until is None else now - grace
    missed: list[datetime] = []
    already = 0
    if planned_until is not None:
        after = planned_until + timedelta(microseconds=1)
        missed = _merged(schedules, after, upcoming_start)
        already = len(_merged(schedules, upcoming_start, after, limit=max_runs))
        upcoming_start = max(upcoming_start, after)
    upcoming = _merged(schedules, upcoming_start, now + horizon, limit=max(0, max_runs - already))
    if catchup:
        return RunPlan(to_create=missed + upcoming, skipped=[])
    return RunPlan(to_create=upcoming, skipped=missed)


def _merged(
    schedules: Sequence[Schedule], start: datetime, end: datetime, *, limit: int | None = None
) -> list[datetime]:
    ticks: set[datetime] = set()
    for s in schedules:
        ticks.update(times_between(s, start, end, limit=limit))
    return sorted(ticks)[:limit]
