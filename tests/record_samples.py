"""Sample records with every declared field set to a value other than its default.

Walks a stored record's declaration (:func:`sluice.store.declarations.columns_of`),
so a test built on it covers a field added later without being edited: a field
declared but not stored, not sent, or not read back fails it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, TypeVar

from sluice.store.declarations import ColumnSpec, columns_of

R = TypeVar("R")

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
_counter = itertools.count(1)


def sample_value(spec: ColumnSpec) -> Any:
    """A value for ``spec``'s field unlike its default, and unlike other fields' values."""
    n = next(_counter)
    if spec.encoding == "bool":
        return not (spec.default() if spec.default is not None else False)
    if spec.encoding == "time":
        return T0 + dt.timedelta(seconds=n, microseconds=n)
    if spec.encoding == "enum":
        assert spec.enum is not None
        members = list(spec.enum)
        default = spec.default() if spec.default is not None else None
        return next(m for m in reversed(members) if m != default)
    if spec.encoding == "strings":
        return [f"{spec.name}-a", f"{spec.name}-é"]
    if spec.encoding == "json":
        empty = spec.default() if spec.default is not None else {}
        value = {"field": spec.name, "n": n, "xs": [1, 2.5, None], "big": 2**70}
        return [value] if isinstance(empty, list) else value
    if spec.sql in ("Integer", "BigInteger"):
        return n + (2**40 if spec.sql == "BigInteger" else 0)
    if spec.sql == "Double":
        return n + 0.25
    return f"{spec.name}-{n}-é"


def sample(record: type[R], **given: Any) -> R:
    """A ``record`` with every field set to a :func:`sample_value` (or as ``given``)."""
    values = {spec.name: sample_value(spec) for spec in columns_of(record)}
    values.update(given)
    return record(**values)
