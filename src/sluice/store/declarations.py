"""The columns of a stored record, read from its declaration in :mod:`sluice.schemas`.

Each field of a stored record's dataclass is one column: its annotation gives
the column's type and encoding, its metadata (:mod:`sluice.columns`) what the
annotation cannot say. :func:`columns_of` turns that into :class:`ColumnSpec`
entries, which the table definitions (:mod:`sluice.store.schema`) and the
record/row conversions (:mod:`sluice.store.rows`) are derived from. A field
whose annotation has no column form is refused here, naming the field, so a
declaration mistake shows up on first use, not as a wrong row.

Nothing here imports SQLAlchemy: column types are named (``"Text"``) and
mapped to SQLAlchemy types by the schema module.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sluice.columns import METADATA_KEY, Stored, WritePolicy

#: How a field's value is stored: ``plain`` as it is (text, numbers), ``bool``,
#: ``time`` as epoch seconds, ``enum`` as its value, ``strings`` (a list of
#: plain values) and ``json`` (anything else JSON-ish) as JSON text.
Encoding = Literal["plain", "bool", "time", "enum", "strings", "json"]
#: SQLAlchemy column types by name (see :data:`sluice.store.schema.SQL_TYPES`)
SqlType = Literal["String", "Text", "Integer", "BigInteger", "Double", "Boolean"]

_SCALARS = (str, int, float, bool)
#: the write policies of columns the engine's batched record writes carry
BATCHED: frozenset[WritePolicy] = frozenset({"every", "kept", "forward"})
#: the write policies of columns an upsert of a record leaves as stored
KEPT_ON_UPSERT: frozenset[WritePolicy] = frozenset({"kept", "operation", "store"})


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a stored record: a field of its dataclass.

    Attributes:
        name: the field's and the column's name.
        encoding: how a value is stored (see :data:`Encoding`).
        sql: the column's type.
        optional: the field takes ``None``.
        nullable: the column takes NULL (an optional field, or one declared
            ``nullable``: NULL then reads as the field's default).
        primary_key: the field is named ``id``.
        write: its write policy (see :data:`sluice.columns.WritePolicy`).
        default: makes the field's default value (``None``: no default); for a
            JSON list or dict, at least its empty value.
        enum: the enum class of an ``enum`` field.
        often_same_as: see :class:`sluice.columns.Stored`.
    """

    name: str
    encoding: Encoding
    sql: SqlType
    optional: bool
    nullable: bool
    primary_key: bool
    write: WritePolicy
    default: Callable[[], Any] | None
    enum: type[enum.Enum] | None
    often_same_as: tuple[str, ...]


@functools.cache
def columns_of(record: type) -> tuple[ColumnSpec, ...]:
    """The columns of a stored record's table, in table order: the primary key
    (a field named ``id``), then the other fields in declaration order.

    Raises:
        TypeError: a field whose annotation has no column form (declare it
            with the vocabulary of :mod:`sluice.columns`).
    """
    hints = typing.get_type_hints(record)
    specs = [_column(record, f, hints[f.name]) for f in dataclasses.fields(record)]
    specs.sort(key=lambda spec: not spec.primary_key)
    _check_hints(record, specs)
    return tuple(specs)


def _column(record: type, f: dataclasses.Field[Any], hint: Any) -> ColumnSpec:
    stored: Stored = f.metadata.get(METADATA_KEY) or Stored()
    base, optional = _without_none(hint)
    encoding, sql = _encoding(base, stored)
    if encoding is None or sql is None:
        raise TypeError(
            f"{record.__name__}.{f.name}: no column form for {hint!r}; declare how it is "
            "stored (see sluice.columns)"
        )
    return ColumnSpec(
        name=f.name,
        encoding=encoding,
        sql=sql,
        optional=optional,
        nullable=(optional or stored.nullable) and f.name != "id",
        primary_key=f.name == "id",
        write=stored.write,
        default=_default(f, typing.get_origin(base)),
        enum=base if encoding == "enum" else None,
        often_same_as=stored.often_same_as,
    )


def _without_none(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _encoding(base: Any, stored: Stored) -> tuple[Encoding | None, SqlType | None]:
    origin = typing.get_origin(base) or base
    if base is bool:
        return "bool", "Boolean"
    if base is int:
        return "plain", "BigInteger" if stored.big else "Integer"
    if base is float:
        return "plain", "Double"
    if base is str:
        return "plain", "Text" if stored.text else "String"
    if base is _dt.datetime:
        return "time", "Double"
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return "enum", "String"
    if origin is list and all(a in _SCALARS for a in typing.get_args(base)):
        return "strings", "Text"
    if origin in (list, dict):
        return "json", "Text"
    return None, None


def _default(f: dataclasses.Field[Any], origin: Any) -> Callable[[], Any] | None:
    """What makes the field's default value; for a JSON list or dict without one, its
    empty value (what an empty or NULL column reads as)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    if f.default is not dataclasses.MISSING:
        value = f.default
        return lambda: value
    return origin if origin in (list, dict) else None


def _check_hints(record: type, specs: list[ColumnSpec]) -> None:
    earlier: set[str] = set()
    for spec in specs:
        for other in spec.often_same_as:
            if spec.encoding != "time" or other not in earlier:
                raise TypeError(
                    f"{record.__name__}.{spec.name}: often_same_as names {other!r}, which "
                    "is not an earlier time field"
                )
        if spec.encoding == "time":
            earlier.add(spec.name)
        if spec.write not in BATCHED and spec.default is None:
            raise TypeError(
                f"{record.__name__}.{spec.name}: a field the engine's writes do not carry "
                f"(write policy {spec.write!r}) needs a default"
            )
        if spec.nullable and not spec.optional and spec.default is None:
            raise TypeError(
                f"{record.__name__}.{spec.name}: a nullable column of a field that takes no "
                "None needs a default (what NULL reads as)"
            )


def batched(specs: tuple[ColumnSpec, ...]) -> tuple[ColumnSpec, ...]:
    """The columns the engine's batched writes of a record carry (see ``BATCHED``)."""
    return tuple(spec for spec in specs if spec.write in BATCHED)


__all__ = [
    "BATCHED",
    "KEPT_ON_UPSERT",
    "ColumnSpec",
    "Encoding",
    "SqlType",
    "batched",
    "columns_of",
]
