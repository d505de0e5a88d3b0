"""How a stored record's fields become columns: the vocabulary of the declarations.

A stored record is a dataclass of :mod:`sluice.schemas`; each of its fields is
a column of the record's table, of the same name. The field's annotation
gives the column's type and how a value is encoded and decoded:

=========================  ==============  ===========================================
annotation                 column          stored as
=========================  ==============  ===========================================
``str``                    ``String``      itself (``Text`` with :data:`TEXT`)
``int``                    ``Integer``     itself (``BigInteger`` with :data:`BIGINT`)
``float``                  ``Double``      itself
``bool``                   ``Boolean``     itself
``datetime``               ``Double``      epoch seconds (UTC)
an ``Enum``                ``String``      its value
``list[...]``, ``dict``    ``Text``        compact JSON
``X | None``               nullable        ``None`` as NULL
=========================  ==============  ===========================================

What an annotation cannot say goes in the field's metadata, made by
:func:`column`: ``field(default=None, metadata=TEXT)``. A field named ``id``
is the primary key. Columns a record does not carry (an auto-incremented
key, say) and indexes are listed with the table in :mod:`sluice.store.schema`.

Everything else is derived from these declarations, by field name: the
SQLAlchemy tables, the snapshots and column values the writer binds, the
rows, the records read back, the wire form and the generated SQLite SQL (see
:mod:`sluice.store.rows` and ``docs/architecture.md``, "Stored records").

This module is imported with :mod:`sluice.schemas` by ``import sluice``: it
holds constants and one small function, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: How the store writes a column (see :class:`Stored`):
#:
#: ``"every"``: every write of the record sets it (the default).
#: ``"kept"``: the write that creates the row sets it; later writes of the
#: record (upserts) keep the stored value (a run's ``created``).
#: ``"operation"``: only the store's own operations set it (creating a
#: deployment's run, claiming it); the engine's batched record writes never
#: carry it, and keep the stored value.
#: ``"store"``: the store stamps it itself (a heartbeat, with the database's
#: clock); a record's value is never written.
#: ``"forward"``: every write, but the stored value only moves forward
#: (an attempt number: a late write of an older one never rolls it back).
WritePolicy = Literal["every", "kept", "operation", "store", "forward"]

#: the key of a field's :class:`Stored` in its dataclass metadata
METADATA_KEY = "sluice.stored"


@dataclass(frozen=True, slots=True)
class Stored:
    """What a field's annotation does not say about its column.

    Attributes:
        text: an unbounded ``Text`` column rather than ``String`` (messages,
            descriptions, paths, references).
        big: a 64-bit ``BigInteger`` rather than ``Integer``.
        nullable: the column takes NULL although the field does not take
            ``None`` (a column added to existing rows): NULL reads as the
            field's default.
        write: the column's :data:`WritePolicy`.
        often_same_as: an encoding hint for a time field: earlier time fields
            this one is often the very same ``datetime`` object as (a run's
            ``updated`` is its ``end_time`` once it ended); the writer then
            reuses their conversion instead of converting again.
    """

    text: bool = False
    big: bool = False
    nullable: bool = False
    write: WritePolicy = "every"
    often_same_as: tuple[str, ...] = ()


def column(
    *,
    text: bool = False,
    big: bool = False,
    nullable: bool = False,
    write: WritePolicy = "every",
    often_same_as: tuple[str, ...] = (),
) -> Mapping[str, Any]:
    """Field metadata declaring what the annotation does not (see :class:`Stored`)."""
    return {METADATA_KEY: Stored(text, big, nullable, write, often_same_as)}


#: an unbounded text column
TEXT = column(text=True)
#: a 64-bit integer column
BIGINT = column(big=True)
#: set when the row is created, kept by later writes
KEPT = column(write="kept")
#: set only by the store's own operations (never by batched record writes)
BY_OPERATION = column(write="operation")

__all__ = [
    "BIGINT",
    "BY_OPERATION",
    "KEPT",
    "METADATA_KEY",
    "TEXT",
    "Stored",
    "WritePolicy",
    "column",
]
