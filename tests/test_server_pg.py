"""Several servers on one PostgreSQL database: one runs each singleton service.

Needs ``SLUICE_TEST_PG_URL``; each test creates (and drops) its own database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sluice.server.app import create_app
from sluice.settings import load_settings
from tests.pg_databases import pg_database

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with pg_database("sluice_server") as url:
        monkeypatch.setenv("SLUICE_DATABASE_URL", url)
        yield url


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.integration
@pytest.mark.usefixtures("pg_url")
def test_two_servers_run_crash_detection_once() -> None:
    clients = [
        TestClient(create_app(load_settings(), crash_interval=0.05), base_url="http://127.0.0.1")
        for _ in range(2)
    ]
    open_clients = [c.__enter__() for c in clients]
    try:
        a, b = (c.app.state.services[0] for c in clients)  # type: ignore[attr-defined]
        assert wait_for(lambda: a.ticks + b.ticks >= 5)
        assert a.lock.held != b.lock.held  # exactly one holds the advisory lock
        leader = 0 if a.lock.held else 1
        standby = (a, b)[1 - leader]
        time.sleep(0.3)
        assert standby.ticks == 0  # the standby never ran the step
        # The leader's server shuts down (releasing the lock): the standby takes over.
        open_clients.remove(clients[leader])
        clients[leader].__exit__(None, None, None)
        assert wait_for(lambda: standby.ticks > 0)
        assert standby.lock.held
    finally:
        for client in open_clients:
            client.__exit__(None, None, None)
