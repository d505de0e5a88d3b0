"""Schema versions: create, check and upgrade the store's tables.

Alembic owns the history (``migrations/versions``), but importing it costs
about a third of a second, more than half a hello-world flow's budget. So
opening a database avoids it on the two common paths:

* a brand-new database gets ``metadata.create_all()`` plus the head revision
  written into ``alembic_version`` by hand (what ``alembic stamp head`` does);
* a database already at :data:`HEAD_REVISION` costs one SELECT.

Only a database at an older revision imports Alembic and upgrades. A test
checks that :data:`HEAD_REVISION` is the scripts' head and that upgrading an
empty database yields exactly what ``create_all`` makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select

from sluice.errors import StoreCorruptError, StoreError
from sluice.store.database import retry_when_busy, run_write
from sluice.store.schema import TABLE_NAMES, metadata

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest migration in ``migrations/versions``; bump it with every new one.
HEAD_REVISION = "0001"

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: Alembic's own bookkeeping table, declared here so a fresh database can be
#: stamped without importing Alembic (same name, column and constraint name).
version_table = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)
version_table.primary_key.name = "alembic_version_pkc"

#: arbitrary constant key of the PostgreSQL advisory lock serializing schema setup
_PG_SCHEMA_LOCK = 0x51_1C_E0_01


def ensure_schema(engine: Engine, *, lock_timeout: float, label: str) -> None:
    """Make the database hold the current schema, as cheaply as possible.

    Raises:
        StoreCorruptError: the database holds tables that are not a Sluice store.
        StoreError: the database is from a newer Sluice, or cannot be changed.
    """

    def read_revision() -> str | None:
        # Retried: the first connection to a brand-new file switches it to WAL,
        # which waits on any other process doing the same at that moment.
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
    if conn.dialect.name == "postgresql":
        # Several processes may open a new PostgreSQL database at once; DDL
        # there is transactional but concurrent CREATE TABLEs still collide.
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
    # Checked again inside the write transaction: another process may have
    # created the store while this one waited for the lock.
    revision = current_revision(conn)
    if revision == HEAD_REVISION:
        return
    existing = set(inspect(conn).get_table_names())
    ours = existing & set(TABLE_NAMES)
    if ours:
        raise StoreCorruptError(
            label, f"it holds Sluice tables ({', '.join(sorted(ours))}) but no schema revision"
        )
    if existing and conn.dialect.name == "sqlite":
        # A SQLite file belongs to one application; do not add tables to another's.
        names = ", ".join(sorted(existing)[:5])
        raise StoreCorruptError(label, f"it is not a Sluice database (it holds tables {names})")
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
    "HEAD_REVISION",
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "reset",
    "upgrade",
    "version_table",
]
