"""Two servers on one PostgreSQL database: one runs the scheduler; no tick is created twice.

Needs ``SLUICE_TEST_PG_URL``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from sluice.backend.local import LocalBackend
from sluice.scheduling.schedules import IntervalSchedule, schedule_to_dict
from sluice.server.app import create_app
from sluice.settings import load_settings
from tests.deployment_backends import make_deployment
from tests.test_server_pg import pg_url, wait_for  # noqa: F401 (the fixture)

PG_URL = os.environ.get("SLUICE_TEST_PG_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")


@pytest.mark.integration
@pytest.mark.usefixtures("pg_url")
def test_two_servers_schedule_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_SCHEDULER_INTERVAL", "0.05")
    settings = load_settings()
    store = LocalBackend(settings)
    anchor = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    schedule = [dict(schedule_to_dict(IntervalSchedule(dt.timedelta(seconds=5), anchor)))]
    store.upsert_deployment(make_deployment(schedules=schedule))
    clients = [TestClient(create_app(settings), base_url="http://127.0.0.1") for _ in range(2)]
    open_clients = [c.__enter__() for c in clients]
    try:
        a, b = (c.app.state.services[1] for c in clients)  # type: ignore[attr-defined]
        assert (a.name, b.name) == ("scheduler", "scheduler")
        assert wait_for(lambda: a.ticks + b.ticks >= 5)
        assert a.lock.held != b.lock.held
        leader = 0 if a.lock.held else 1
        standby = (a, b)[1 - leader]
        time.sleep(0.3)
        assert standby.ticks == 0
        open_clients.remove(clients[leader])
        clients[leader].__exit__(None, None, None)
        assert wait_for(lambda: standby.ticks > 0)
        runs = store.list_deployment_runs("etl/daily", limit=0)
        assert runs  # the default horizon is ten minutes: 120 ticks
        assert max(Counter(r.scheduled_start_time for r in runs).values()) == 1
    finally:
        for client in open_clients:
            client.__exit__(None, None, None)
        store.close()
