"""Schema versions: create, check and upgrade the store's tables.

Alembic owns the history (``migrations/versions``), but importing it costs
about a third of a second, more than half a hello-world flow's budget. So
opening a database avoids it on the two common paths:

* a brand-new database gets the current schema plus the head revision written
  into ``alembic_version`` by hand (what ``alembic stamp head`` does):
  ``metadata.create_all()`` on PostgreSQL, its SQL text generated ahead of
  time on SQLite (:mod:`sluice.store.sqlite_native`, which SQLite databases
  are handed to whole, so there is one way to open a SQLite store);
* a database already at :data:`HEAD_REVISION` costs one SELECT.

Only a database at an older revision imports Alembic and upgrades. A test
checks that :data:`HEAD_REVISION` is the scripts' head and that upgrading an
empty database yields exactly what opening a new one makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, select

from sluice.errors import StoreError
from sluice.store.database import run_write
from sluice.store.retry import retry_when_busy
from sluice.store.revision import HEAD_REVISION, refuse_unversioned
from sluice.store.schema import TABLE_NAMES, metadata, version_table

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: arbitrary constant key of the PostgreSQL advisory lock serializing schema setup
_PG_SCHEMA_LOCK = 0x51_1C_E0_01


def ensure_schema(engine: Engine, *, lock_timeout: float, label: str) -> None:
    """Make the database hold the current schema, as cheaply as possible.

    Raises:
        StoreCorruptError: the database holds tables that are not a Sluice store.
        StoreError: the database is from a newer Sluice, or cannot be changed.
    """
    if engine.dialect.name == "sqlite":
        # One way to set up a SQLite store, whoever opens it: the stdlib path
        # (generated DDL; Alembic only for an older revision).
        from sluice.store.sqlite_native import SqliteStore

        SqliteStore(Path(engine.url.database or ""), lock_timeout=lock_timeout).close()
        return

    def read_revision() -> str | None:
        with engine.connect() as conn:
            return current_revision(conn)

    revision = retry_when_busy(read_revision, lock_timeout=lock_timeout, label=label)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        run_write(engine, lambda conn: _create(conn, label), lock_timeout=lock_timeout, label=label)
    else:
        upgrade(engine, lock_timeout=lock_timeout, label=label)


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in ``alembic_version``, or ``None`` for an unversioned database."""
    if not conn.dialect.has_table(conn, version_table.name):
        return None
    return conn.execute(select(version_table.c.version_num)).scalar()


def _create(conn: Connection, label: str) -> None:
    # Several processes may open a new PostgreSQL database at once; DDL there
    # is transactional but concurrent CREATE TABLEs still collide.
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
    # Checked again inside the write transaction: another process may have
    # created the store while this one waited for the lock.
    revision = current_revision(conn)
    if revision == HEAD_REVISION:
        return
    # A PostgreSQL database may hold other applications' tables (schemas are
    # shared); only ours without a revision mean a damaged store.
    refuse_unversioned(label, inspect(conn).get_table_names(), TABLE_NAMES, whole_file=False)
    metadata.create_all(conn)
    version_table.create(conn, checkfirst=True)
    conn.execute(version_table.delete())
    conn.execute(version_table.insert().values(version_num=HEAD_REVISION))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations (no ``alembic.ini`` needed).

    Args:
        url: database URL for Alembic commands run without a connection
            (``revision --autogenerate`` while developing).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine, *, lock_timeout: float = 60.0, label: str | None = None) -> None:
    """Run ``alembic upgrade head`` on ``engine`` inside one write transaction.

    Raises:
        StoreError: the database's revision is unknown (a newer Sluice made it)
            or a migration failed.
    """
    from alembic import command
    from alembic.util import CommandError

    name = label or engine.url.render_as_string(hide_password=True)
    cfg = alembic_config()

    def work(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    try:
        run_write(engine, work, lock_timeout=lock_timeout, label=name)
    except CommandError as exc:
        raise StoreError(
            f"Cannot upgrade the Sluice database at {name}: {exc} (this Sluice knows "
            f"revisions up to {HEAD_REVISION}; is the database from a newer one?)"
        ) from exc


def reset(engine: Engine, *, lock_timeout: float = 60.0, label: str | None = None) -> None:
    """Drop every Sluice table and create the current schema again (all data is lost)."""
    name = label or engine.url.render_as_string(hide_password=True)

    def work(conn: Connection) -> None:
        metadata.drop_all(conn)
        version_table.drop(conn, checkfirst=True)

    run_write(engine, work, lock_timeout=lock_timeout, label=name)
    ensure_schema(engine, lock_timeout=lock_timeout, label=name)


__all__ = [
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "reset",
    "upgrade",
    "version_table",
]
