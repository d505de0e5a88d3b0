"""Durations as people type them (``3600``, ``90s``, ``1h30m``, ``1d``) and as we show them."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from sluice.errors import ScheduleError

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_NUMBER = r"\d+(?:\.\d+)?"
_SECONDS_ONLY = re.compile(rf"{_NUMBER}")
_PARTS = re.compile(rf"(?:\s*{_NUMBER}\s*[wdhms])+\s*", re.IGNORECASE)
_PART = re.compile(rf"({_NUMBER})\s*([wdhms])", re.IGNORECASE)
_HINT = "expected seconds (3600) or a duration like 90s, 15m, 1h30m, 1d"


def parse_duration(value: object, where: str) -> timedelta:
    """A positive duration from seconds (number or numeric string) or ``1h30m`` text.

    Raises:
        ScheduleError: ``"{where} {value!r}: ..."`` when it is not a positive duration.
    """
    seconds = _seconds(value, where)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ScheduleError(f"{where} {value!r}: must be a positive duration")
    try:
        duration = timedelta(seconds=seconds)
    except OverflowError:
        raise ScheduleError(f"{where} {value!r}: too long") from None
    if duration <= timedelta(0):
        raise ScheduleError(f"{where} {value!r}: must be at least a microsecond")
    return duration


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ScheduleError(f"{where} {value!r}: {_HINT}")
    if not isinstance(value, str):
        return float(value)
    text = value.strip()
    if _SECONDS_ONLY.fullmatch(text):
        return float(text)
    if not _PARTS.fullmatch(text):
        raise ScheduleError(f"{where} {value!r}: {_HINT}")
    return sum(float(number) * _UNITS[unit.lower()] for number, unit in _PART.findall(text))


def format_duration(duration: timedelta) -> str:
    """Compact text: ``1d``, ``1h30m``, ``90s`` shown as ``1m30s``, ``0.25s``."""
    micros = duration // timedelta(microseconds=1)
    whole, fraction = divmod(micros, 1_000_000)
    parts = []
    for unit in ("d", "h", "m"):
        count, whole = divmod(whole, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    if whole or fraction or not parts:
        seconds = f"{whole}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(whole)
        parts.append(f"{seconds}s")
    return "".join(parts)


def duration_seconds(duration: timedelta) -> int | float:
    """Seconds as a JSON number: an int when whole, so ``3600`` stays ``3600``."""
    micros = duration // timedelta(microseconds=1)
    return micros // 1_000_000 if micros % 1_000_000 == 0 else micros / 1_000_000
