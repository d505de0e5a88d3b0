"""Checks a record must pass before it reaches the store's writer.

JSON and pydantic accept values the store cannot hold: integers past 64
bits in a record's integer fields (database integers), numbers that are
not finite, strings with lone surrogates (``"\\ud800"`` is valid JSON but
not UTF-8), naive or out-of-range datetimes (stored as epoch seconds, they
could not be read back). The writer batches records from every client
together, so one such record would fail every batch it lands in; it is
refused here, at the door, with a 422 naming the field.

Free-form values (parameters, state details: fields the store keeps as JSON
text) may hold integers of any size, as Python's do: the embedded store
keeps them exactly, and so must a server (one rule for both).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import operator
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic_core import TzInfo

from sluice.errors import InvalidRecords

_UTC = _dt.timezone.utc
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A day inside datetime's range, so any UTC offset still converts back.
EARLIEST = _dt.datetime(1, 1, 2, tzinfo=_UTC)
LATEST = _dt.datetime(9999, 12, 30, tzinfo=_UTC)
#: errors listed in one answer (a bad batch may hold thousands)
MAX_ERRORS = 20

Loc = tuple[str | int, ...]


def check_storable(
    value: Any,
    loc: Loc = ("body",),
    *,
    unicode_checked: bool = False,
    shaped_as: type | None = None,
) -> None:
    """Raise :class:`InvalidRecords` if ``value`` (records, lists, dicts) holds a value
    the store cannot hold; ``loc`` is where ``value`` sits in the request.

    Args:
        unicode_checked: ``value`` was parsed from JSON by a parser that refuses
            lone surrogates: the records' string fields need no look
            (free-form fields are still walked).
        shaped_as: ``value`` is a dict of some of this record type's fields (a
            PATCH body): its keys are checked as those fields are.
    """
    if shaped_as is None and _clean(value, unicode_checked):
        return
    # Something looked suspect: walk everything again, collecting where and why.
    errors: list[dict[str, Any]] = []
    if shaped_as is not None and type(value) is dict:
        free = _free_fields(shaped_as)
        for key, item in value.items():
            _check(key, (*loc, str(key)), errors)
            _check(item, (*loc, str(key)), errors, free=key in free)
    else:
        _check(value, loc, errors)
    if errors:
        raise InvalidRecords(errors)


def _check(value: Any, loc: Loc, errors: list[dict[str, Any]], free: bool = False) -> None:
    """Append to ``errors`` what in ``value`` the store cannot hold; ``free``: the
    value sits in a free-form (JSON) field, where integers may have any size."""
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
        if not free and not INT64_MIN <= value <= INT64_MAX:
            errors.append(_error(loc, "integer does not fit in 64 bits", "int"))
    elif kind is float:
        if not math.isfinite(value):
            errors.append(_error(loc, "number is not finite (NaN or infinite)", "finite_number"))
    elif kind is _dt.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            errors.append(_error(loc, "datetime needs a timezone", "timezone_aware"))
        elif not EARLIEST <= value <= LATEST:
            errors.append(_error(loc, "datetime out of range", "datetime"))
    elif kind is dict:
        for key, item in value.items():
            _check(key, (*loc, str(key)), errors)
            _check(item, (*loc, str(key)), errors, free)
    elif kind is list or kind is tuple:
        for index, item in enumerate(value):
            _check(item, (*loc, index), errors, free)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        free_fields = _free_fields(value.__class__)
        for f in dataclasses.fields(value):
            _check(getattr(value, f.name), (*loc, f.name), errors, f.name in free_fields)


@cache
def _free_fields(cls: type) -> frozenset[str]:
    """The fields of a record type the store keeps as JSON text (declared ``Any``,
    ``dict[str, Any]`` ...), as opposed to columns of a type."""
    if not dataclasses.is_dataclass(cls):
        return frozenset()
    hints = typing.get_type_hints(cls)
    return frozenset(f.name for f in dataclasses.fields(cls) if _kind(hints[f.name]) is None)


# -- the screen: a cheap pass that answers "certainly storable" ---------------------
#
# A batch of thousands of records is checked once per request. Walking every
# value generically costs ~20 us a record; the screen instead checks each
# dataclass field by its declared type (an int field: one range compare; a str
# field: ``isascii()``; an enum or float: nothing) and walks only the free-form
# JSON fields (``parameters``, ``details``) generically. It is conservative:
# a non-ASCII string or any value it cannot vouch for sends the whole value
# through ``_check``, which decides and names the fields.

_Screen = Callable[[Any], bool]


def _clean(value: Any, unicode_checked: bool = False) -> bool:
    """True if ``value`` certainly holds nothing :func:`_check` would refuse."""
    kind = type(value)
    if kind is list or kind is tuple:
        if not value:
            return True
        first = type(value[0])
        if dataclasses.is_dataclass(first):
            screen = _dataclass_screen(first, unicode_checked)
            return all(type(item) is first and screen(item) for item in value)
        return _generic_clean(value)
    if dataclasses.is_dataclass(kind) and not isinstance(value, type):
        return _dataclass_screen(kind, unicode_checked)(value)
    return _generic_clean(value)


def _generic_clean(value: Any, free: bool = False) -> bool:
    errors: list[dict[str, Any]] = []
    _check(value, (), errors, free)
    return not errors


#: tzinfo types whose offset is never None (pydantic's parsed zones, fixed offsets)
_FIXED_ZONES = (_dt.timezone, TzInfo)


_PLAIN = (float, bool, type(None))


def _datetime_ok(value: Any) -> bool:
    zone = value.tzinfo
    if zone is None or (type(zone) not in _FIXED_ZONES and value.utcoffset() is None):
        return False
    # Years 2-9998 are in range whatever the offset; compare only near the ends.
    return bool(1 < value.year < 9999 or EARLIEST <= value <= LATEST)


def _kind(annotation: Any) -> Any:
    """What a field declared as ``annotation`` holds, for the screen: int, str,
    datetime, a dataclass, ``list[str]``, ``list[<dataclass>]``, "skip" (enums,
    floats, bools: nothing to refuse) or None (free-form: walk it generically)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _kind(rest[0]) if len(rest) == 1 else None
    if annotation in (int, str, _dt.datetime):
        return annotation
    if annotation in (float, bool) or (
        isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    ):
        return "skip"
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if item is str or (isinstance(item, type) and dataclasses.is_dataclass(item)):
            return ("list", item)
    return None


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """``attrgetter`` that always answers a tuple (even for one or no name)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        get_one = operator.attrgetter(names[0])
        return lambda v: (get_one(v),)
    return operator.attrgetter(*names)


@cache
def _dataclass_screen(cls: type, unicode_checked: bool = False) -> _Screen:
    """The screen of one record type: its fields grouped by declared type, each
    group read with one ``attrgetter`` call and checked inline. With
    ``unicode_checked`` (pydantic parsed the JSON, so each string field holds a
    valid ``str``), string fields are not looked at."""
    hints = typing.get_type_hints(cls)
    groups: dict[Any, list[str]] = {}
    nested: list[str] = []
    for f in dataclasses.fields(cls):
        kind = _kind(hints[f.name])
        if unicode_checked and kind in (str, ("list", str)):
            continue
        if kind in (int, str, _dt.datetime, "skip", None, ("list", str)):
            groups.setdefault(kind, []).append(f.name)
        else:
            nested.append(f.name)
    ints, strs = _getter(groups.get(int, [])), _getter(groups.get(str, []))
    times, free = _getter(groups.get(_dt.datetime, [])), _getter(groups.get(None, []))
    str_lists = _getter(groups.get(("list", str), []))
    skipped = _getter(groups.get("skip", []))
    low, high = INT64_MIN, INT64_MAX
    isfinite = math.isfinite

    def screen(value: Any) -> bool:
        for x in ints(value):
            if type(x) is int:
                if not low <= x <= high:
                    return False
            elif x is not None and not _generic_clean(x):
                return False
        for x in strs(value):
            if type(x) is str:
                if not x.isascii():
                    return False
            elif x is not None and not _generic_clean(x):
                return False
        for x in times(value):
            if type(x) is _dt.datetime:
                if not _datetime_ok(x):
                    return False
            elif x is not None and not _generic_clean(x):
                return False
        for x in str_lists(value):
            if type(x) is list:
                for item in x:
                    if type(item) is not str or not item.isascii():
                        return False
            elif not _generic_clean(x):
                return False
        for x in free(value):
            if x is not None and not _generic_clean(x, free=True):
                return False
        for x in skipped(value):
            # Enums, bools, finite floats hold nothing to refuse; anything else is looked at.
            if type(x) is float:
                if not isfinite(x):
                    return False
            elif type(x) not in _PLAIN and not isinstance(x, enum.Enum) and not _generic_clean(x):
                return False
        for name in nested:
            x = getattr(value, name)
            if x is not None and not _clean(x, unicode_checked):
                return False
        return True

    return screen


def _error(loc: Loc, msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}
