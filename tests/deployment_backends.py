"""Backends for the deployment tests: embedded SQLite, embedded PostgreSQL, HTTP client.

The PostgreSQL database is created once per session and dropped at its end;
the HTTP backend talks to the session's real server (``api_server``), whose
store is emptied before each test.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.schemas import DeploymentRecord
from sluice.settings import Settings, StoreSettings
from tests.pg_databases import create_pg_database, drop_pg_database, postgresql_param

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
KINDS = ["sqlite", postgresql_param(), "http"]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _schedule(kind: str) -> dict[str, Any]:
    from sluice.scheduling.schedules import (
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


@pytest.fixture(scope="session")
def deployments_pg_url() -> Iterator[str]:
    url = create_pg_database("sluice_dep")
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
