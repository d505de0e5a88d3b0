"""Backends for the deployment tests: embedded SQLite, embedded PostgreSQL, HTTP client.

The PostgreSQL database is created once per session and dropped at its end;
the HTTP backend talks to the session's real server (``api_server``), whose
store is emptied before each test.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.schemas import DeploymentRecord
from sluice.settings import Settings, StoreSettings

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
KINDS = ["sqlite", *(["postgresql"] if PG_URL else []), "http"]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _schedule(kind: str) -> dict[str, Any]:
    from sluice.deployments.schedules import (
        CronSchedule,
        IntervalSchedule,
        schedule_to_dict,
    )

    if kind == "cron":
        return dict(schedule_to_dict(CronSchedule("0 6 * * *")))
    return dict(schedule_to_dict(IntervalSchedule(dt.timedelta(minutes=1), anchor_date=T0)))


#: schedules as the server stores them (canonical dicts)
CRON = _schedule("cron")
INTERVAL = _schedule("interval")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "title": "N"},
        "label": {"type": "string", "default": "x", "title": "Label"},
    },
    "required": ["n"],
}


def make_deployment(name: str = "daily", flow_name: str = "etl", **kw: Any) -> DeploymentRecord:
    kw.setdefault("entrypoint", "flows/etl.py:etl")
    kw.setdefault("parameters", {"n": 1})
    kw.setdefault("parameter_schema", SCHEMA)
    return DeploymentRecord(name=name, flow_name=flow_name, **kw)


def create_pg_database() -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"sluice_dep_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def deployments_pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def empty_store(backend: Any) -> None:
    from sluice.store.database import write_connection
    from sluice.store.schema import metadata

    with write_connection(backend.engine) as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def open_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty backend of ``kind``."""
    from sluice.backend.local import LocalBackend

    store = StoreSettings(flush_interval=0.05, lock_timeout=10.0)
    if kind == "sqlite":
        return LocalBackend(Settings(home=tmp_path / "home", store=store))
    if kind == "postgresql":
        url = request.getfixturevalue("deployments_pg_url")
        backend = LocalBackend(Settings(home=tmp_path / "home", database_url=url, store=store))
        empty_store(backend)
        return backend
    from sluice.backend.http import HttpBackend

    server = request.getfixturevalue("api_server")
    settings = Settings(home=server.home, api_url=server.url, store=store, api_retry_timeout=10.0)
    store_side = LocalBackend(settings)
    try:
        empty_store(store_side)
    finally:
        store_side.close()
    return HttpBackend(settings)
