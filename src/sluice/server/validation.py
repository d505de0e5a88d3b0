"""Checks a record must pass before it reaches the store's writer.

JSON and pydantic accept values the store cannot hold: integers past 64
bits, strings with lone surrogates (``"\\ud800"`` is valid JSON but not
UTF-8), naive or out-of-range datetimes (stored as epoch seconds, they could
not be read back). The writer batches records from every client together, so
one such record would fail every batch it lands in; it is refused here, at
the door, with a 422 naming the field.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any

from sluice.errors import SluiceError

_UTC = _dt.timezone.utc
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A day inside datetime's range, so any UTC offset still converts back.
EARLIEST = _dt.datetime(1, 1, 2, tzinfo=_UTC)
LATEST = _dt.datetime(9999, 12, 30, tzinfo=_UTC)
#: errors listed in one answer (a bad batch may hold thousands)
MAX_ERRORS = 20

Loc = tuple[str | int, ...]


class InvalidRecords(SluiceError):
    """Values the store cannot hold; ``errors`` in FastAPI's ``{"loc", "msg", "type"}`` shape."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} invalid value(s), first: {errors[0]['msg']}")


def check_storable(value: Any, loc: Loc = ("body",)) -> None:
    """Raise :class:`InvalidRecords` if ``value`` (records, lists, dicts) holds a value
    the store cannot hold; ``loc`` is where ``value`` sits in the request."""
    errors: list[dict[str, Any]] = []
    _check(value, loc, errors)
    if errors:
        raise InvalidRecords(errors)


def _check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
    if len(errors) >= MAX_ERRORS:
        return
    kind = type(value)
    if kind is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                errors.append(_error(loc, "string holds a lone surrogate (not UTF-8)", "string"))
    elif kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            errors.append(_error(loc, "integer does not fit in 64 bits", "int"))
    elif kind is _dt.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            errors.append(_error(loc, "datetime needs a timezone", "timezone_aware"))
        elif not EARLIEST <= value <= LATEST:
            errors.append(_error(loc, "datetime out of range", "datetime"))
    elif kind is dict:
        for key, item in value.items():
            _check(key, (*loc, str(key)), errors)
            _check(item, (*loc, str(key)), errors)
    elif kind is list or kind is tuple:
        for index, item in enumerate(value):
            _check(item, (*loc, index), errors)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _check(getattr(value, f.name), (*loc, f.name), errors)


def _error(loc: Loc, msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}
