"""Log retention: the store's chunked delete, and the server service that runs it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sluice.backend.local import LocalBackend
from sluice.schemas import LogRecord, new_id
from sluice.server.app import create_app
from sluice.server.services.log_retention import log_retention, purge_old_logs
from sluice.settings import ServerSettings, Settings, StoreSettings, load_settings
from sluice.states import utcnow
from sluice.store.retention import Purged, delete_logs_before
from tests.server_helpers import DIALECTS, PG_URL, IngestBatch, payload, pg_database

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


def days_ago(days: float, now: dt.datetime = NOW) -> dt.datetime:
    return now - dt.timedelta(days=days)


@pytest.fixture(params=DIALECTS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of an empty store on each database."""
    store = StoreSettings(flush_interval=0.05, lock_timeout=10.0)
    if request.param == "sqlite":
        yield Settings(home=tmp_path, store=store)
        return
    with pg_database() as url:
        yield Settings(home=tmp_path, database_url=url, store=store)


@pytest.fixture
def store(settings: Settings) -> Iterator[LocalBackend]:
    backend = LocalBackend(settings)
    yield backend
    backend.close()


def write_lines(store: LocalBackend, run_id: str, ages_in_days: list[float]) -> None:
    store.write_logs(
        [LogRecord(run_id, None, 20, "app", f"{age}d", days_ago(age)) for age in ages_in_days]
    )
    store.flush()


def kept(store: LocalBackend, run_id: str) -> list[str]:
    return [line.message for line in store.read_logs(run_id)]


def test_old_lines_are_deleted_in_bounded_transactions(store: LocalBackend) -> None:
    run_id = new_id()
    write_lines(store, run_id, [40, 31, 35, 30.5, 29, 1, 45, 0])
    purged = delete_logs_before(store.database, days_ago(30), chunk=2)
    assert purged == Purged(lines=5, transactions=3)  # 2 + 2 + 1 lines
    assert kept(store, run_id) == ["29d", "1d", "0d"]
    assert delete_logs_before(store.database, days_ago(30), chunk=2) == Purged(0, 0)


def test_a_line_stored_late_with_an_old_time_goes_at_the_next_pass(store: LocalBackend) -> None:
    run_id = new_id()
    write_lines(store, run_id, [50, 10])
    assert purge_old_logs(store, 30, NOW).lines == 1
    write_lines(store, run_id, [60])  # a client's old line, delivered late
    assert purge_old_logs(store, 30, NOW).lines == 1
    assert kept(store, run_id) == ["10d"]
    # "now" moves on: what was young enough ages out.
    assert purge_old_logs(store, 30, NOW + dt.timedelta(days=25)).lines == 1
    assert kept(store, run_id) == []


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().server.log_retention_days == 0  # off by default
    monkeypatch.setenv("SLUICE_SERVER_LOG_RETENTION_DAYS", "14")
    monkeypatch.setenv("SLUICE_SERVER_LOG_RETENTION_INTERVAL", "60")
    assert load_settings().server == ServerSettings(14.0, 60.0)


def test_no_service_unless_configured(store: LocalBackend) -> None:
    assert log_retention(store, store.settings) is None


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def with_retention(settings: Settings, days: float, interval: float) -> Settings:
    return Settings(
        home=settings.home,
        database_url=settings.database_url,
        store=settings.store,
        server=ServerSettings(log_retention_days=days, log_retention_interval=interval),
    )


@pytest.mark.integration
def test_the_server_deletes_old_logs_when_configured(settings: Settings) -> None:
    run_id = new_id()
    now = utcnow()
    lines = [
        LogRecord(run_id, None, 20, "app", name, days_ago(age, now))
        for name, age in (("old", 8), ("recent", 6), ("new", 0))
    ]
    with TestClient(
        create_app(with_retention(settings, days=7, interval=0.05)), base_url="http://127.0.0.1"
    ) as client:
        service = client.app.state.services[-1]  # type: ignore[attr-defined]
        assert service.name == "log-retention"
        body = payload(IngestBatch(logs=lines))
        assert client.post("/api/ingest", json=body).status_code == 202

        def messages() -> list[str]:
            return [line["message"] for line in client.get(f"/api/flow_runs/{run_id}/logs").json()]

        assert wait_for(lambda: messages() == ["recent", "new"]), messages()
        assert service.ticks >= 1


@pytest.mark.integration
@pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
def test_two_servers_on_postgresql_run_retention_once(tmp_path: Path) -> None:
    with pg_database() as url:
        settings = with_retention(Settings(home=tmp_path, database_url=url), days=7, interval=0.05)
        clients = [TestClient(create_app(settings), base_url="http://127.0.0.1") for _ in range(2)]
        open_clients = [c.__enter__() for c in clients]
        try:
            a, b = (c.app.state.services[-1] for c in clients)  # type: ignore[attr-defined]
            assert wait_for(lambda: a.ticks + b.ticks >= 5)
            assert a.lock.held != b.lock.held  # exactly one holds the advisory lock
            standby = b if a.lock.held else a
            time.sleep(0.3)
            assert standby.ticks == 0
        finally:
            for client in open_clients:
                client.__exit__(None, None, None)
