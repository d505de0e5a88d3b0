"""From local wall-clock times to UTC instants, with one rule for DST changes.

The rules (every schedule kind follows them):

* A wall-clock time that does not exist (the spring-forward gap: in Europe/London
  01:30 on the last Sunday of March) runs once, at the first instant after the gap
  (02:00 BST). Several gap times collapse into that one instant.
* A wall-clock time that occurs twice (the fall-back overlap: 01:30 on the last Sunday
  of October) runs once, at its first occurrence (01:30 BST) — unless the caller asks
  for both occurrences, which cron does when its hour field is ``*`` or ``*/N``: such
  a schedule is periodic in absolute time, so ``0 * * * *`` still fires every hour.

Everything here is pure: zones come from :mod:`zoneinfo` (the IANA database), and no
clock is read.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sluice.errors import ScheduleError

UTC = timezone.utc
_SECOND = timedelta(seconds=1)
_HOUR = timedelta(hours=1)
_HOUR_LESS_A_MICROSECOND = timedelta(hours=1, microseconds=-1)
_NAIVE_EPOCH = datetime(2000, 1, 1)
_AWARE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def load_zone(name: object, where: str) -> ZoneInfo:
    """The IANA zone ``name``; ScheduleError naming ``where`` when it is not one."""
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"{where}: timezone must be an IANA name like 'Europe/London'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"{where}: unknown timezone {name!r} (expected an IANA name like 'Europe/London')"
        ) from None


def require_aware(moment: object, name: str) -> datetime:
    """``moment`` itself, checked to be a timezone-aware datetime."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ScheduleError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return moment


def local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time in ``zone`` at the aware ``instant``."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def resolve(wall: datetime, zone: ZoneInfo, *, fold: int = 0) -> datetime:
    """The one UTC instant a naive wall-clock time runs at (gap: first instant after
    it; overlap: the occurrence ``fold`` picks, the first by default)."""
    return _instants(wall, zone, both_folds=False, fold=fold)[0]


def _instants(wall: datetime, zone: ZoneInfo, *, both_folds: bool, fold: int = 0) -> list[datetime]:
    before = wall.replace(tzinfo=zone).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None  # ZoneInfo always answers
    if before == after:
        return [(wall - before).replace(tzinfo=UTC)]
    if before < after:  # the clock jumped forward over this time: it does not exist
        return [_end_of_gap(wall, zone, before, after)]
    first = (wall - before).replace(tzinfo=UTC)
    second = (wall - after).replace(tzinfo=UTC)
    if both_folds:
        return [first, second]
    return [second if fold else first]


def _end_of_gap(wall: datetime, zone: ZoneInfo, before: timedelta, after: timedelta) -> datetime:
    """The instant the clock jumped forward, found by bisection between the two
    readings of ``wall`` (transitions fall on whole seconds; gaps last minutes or hours,
    so this takes a dozen steps and happens at most twice a year)."""
    # Whole seconds on both ends keep the bisection exact: the old offset holds
    # strictly before the transition, the new one from it on.
    low = (wall - after).replace(tzinfo=UTC, microsecond=0)
    high = (wall - before).replace(tzinfo=UTC, microsecond=0)
    while high - low > _SECOND:
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def instants(
    walls: Iterable[datetime], zone: ZoneInfo, *, both_folds: bool = False, fold: int = 0
) -> Iterator[datetime]:
    """UTC instants of strictly ascending naive wall-clock times, ascending and without
    repeats (several gap times map to one instant, which comes out once).

    The first-occurrence (or ``fold``-chosen) mapping never goes backwards as wall time
    advances; only the extra second occurrences (``both_folds``) come later than the
    wall-clock order says, so a small heap holds them until their turn.
    """
    # Arithmetic, not datetime.replace(), on the hot path: replace() costs ten times more.
    if zone.key == "UTC":
        for wall in walls:
            yield _AWARE_EPOCH + (wall - _NAIVE_EPOCH)
        return
    pending: list[datetime] = []
    last: datetime | None = None
    hour_end = datetime.min  # walls ascend: past this, look at the next hour's offset
    shift: datetime | None = None  # the UTC instant of _NAIVE_EPOCH at this hour's offset
    for wall in walls:
        if wall >= hour_end:
            hour_start = datetime(wall.year, wall.month, wall.day, wall.hour)
            hour_end = hour_start + _HOUR
            steady = _steady_offset(hour_start, zone)
            shift = None if steady is None else _AWARE_EPOCH - steady
        if shift is not None:
            found = [shift + (wall - _NAIVE_EPOCH)]
        else:
            found = _instants(wall, zone, both_folds=both_folds, fold=fold)
        if not pending and len(found) == 1:  # the common case: nothing to reorder
            if found[0] != last:
                yield found[0]
                last = found[0]
            continue
        while pending and pending[0] <= found[0]:
            moment = heapq.heappop(pending)
            if moment != last:
                yield moment
                last = moment
        for moment in found:
            heapq.heappush(pending, moment)
    while pending:
        moment = heapq.heappop(pending)
        if moment != last:
            yield moment
            last = moment


def _steady_offset(start_of_hour: datetime, zone: ZoneInfo) -> timedelta | None:
    """The UTC offset of every wall-clock time in this hour, or None when a DST change
    falls inside it. A change moves the offset, so it differs between the hour's two
    ends, or between the two readings (fold 0 and 1) of an end inside a gap or overlap."""
    end_of_hour = start_of_hour + _HOUR_LESS_A_MICROSECOND
    offsets = {
        moment.replace(tzinfo=zone, fold=fold).utcoffset()
        for moment in (start_of_hour, end_of_hour)
        for fold in (0, 1)
    }
    return offsets.pop() if len(offsets) == 1 else None
