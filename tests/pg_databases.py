"""Throwaway PostgreSQL databases on ``SLUICE_TEST_PG_URL`` for the PostgreSQL tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")


def create_pg_database(prefix: str = "sluice_test") -> str:
    """Create an empty database with a unique name; its URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drop the database at ``url``, closing whatever connections still use it."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def pg_database(prefix: str = "sluice_test") -> Iterator[str]:
    """The URL of a new database, dropped on exit."""
    url = create_pg_database(prefix)
    try:
        yield url
    finally:
        drop_pg_database(url)


#: why PostgreSQL cases are skipped when they are
NO_PG_REASON = "SLUICE_TEST_PG_URL is not set: no PostgreSQL server to test against"


def postgresql_param(value: str = "postgresql") -> Any:
    """The PostgreSQL case of a parametrized test or fixture: present in every run,
    skipped with :data:`NO_PG_REASON` when there is no server (never silently left out)."""
    return pytest.param(value, marks=pytest.mark.skipif(not PG_URL, reason=NO_PG_REASON))
