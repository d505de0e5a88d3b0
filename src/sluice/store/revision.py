"""The store's schema revision, and what to make of a database that has none.

Shared by the SQLAlchemy/Alembic path (:mod:`sluice.store.migrate`) and the
stdlib SQLite path (:mod:`sluice.store.sqlite_native`), so it imports neither.
"""

from __future__ import annotations

from collections.abc import Iterable

from sluice.errors import StoreCorruptError
from sluice.store.sqlite_sql import HEAD_REVISION

# HEAD_REVISION, the newest migration in ``migrations/versions``, is read from
# the scripts when sqlite_sql.py is generated (``python -m
# sluice.store.sqlite_sqlgen --write`` after adding a migration); a test checks
# it against the scripts' head.


def refuse_unversioned(
    label: str, existing: Iterable[str], ours: Iterable[str], *, whole_file: bool
) -> None:
    """Raise unless a database without a schema revision can receive the store.

    Args:
        label: the database, as named in messages.
        existing: the tables it holds.
        ours: the store's table names.
        whole_file: the database is a file that belongs to one application
            (SQLite): any table there means it is someone else's.

    Raises:
        StoreCorruptError: it holds some of our tables (a store that lost its
            revision) or, for a ``whole_file`` database, anyone's tables.
    """
    existing = set(existing)
    found = existing & set(ours)
    if found:
        raise StoreCorruptError(
            label, f"it holds Sluice tables ({', '.join(sorted(found))}) but no schema revision"
        )
    if existing and whole_file:
        names = ", ".join(sorted(existing)[:5])
        raise StoreCorruptError(label, f"it is not a Sluice database (it holds tables {names})")


__all__ = ["HEAD_REVISION", "refuse_unversioned"]
