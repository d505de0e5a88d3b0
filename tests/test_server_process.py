"""The server as users run it: a real uvicorn subprocess, the CLI, and the services."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sluice.backend.local import LocalBackend
from sluice.cli.main import app as cli
from sluice.schemas import FlowRunFilter
from sluice.server.app import create_app
from sluice.settings import load_settings
from sluice.states import StateType
from tests.server_helpers import flow_run, heartbeat, ingest_batch, payload, task_run

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)
    raise AssertionError("the server did not become healthy")


@pytest.mark.integration
def test_real_server_ingest_read_and_sigterm(sluice_home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice", "server", "start", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    try:
        wait_healthy(url, proc)
        run, write = flow_run(StateType.RUNNING)
        batch = ingest_batch(flow_runs=[write], task_runs=[task_run(run.id)])
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.post("/api/ingest", json=payload(batch)).status_code == 202
            assert http.get(f"/api/flow_runs/{run.id}").json()["state_type"] == "RUNNING"
            assert len(http.get(f"/api/flow_runs/{run.id}/task_runs").json()) == 1
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out.decode()
    assert b"Application shutdown complete" in out
    # Acknowledged means durable: the store holds it with the server gone.
    backend = LocalBackend(load_settings())
    try:
        assert backend.read_flow_run(run.id).state_type is StateType.RUNNING
    finally:
        backend.close()


def test_refuses_non_loopback_without_key() -> None:
    result = runner.invoke(cli, ["server", "start", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Refusing to serve on 0.0.0.0 without an API key")
    assert len(result.stderr.strip().splitlines()) == 1


def test_database_reset_needs_yes(sluice_home: Path) -> None:
    run, write = flow_run()
    backend = LocalBackend(load_settings())
    backend.write_flow_run(write.run, write.state)
    backend.close()

    refused = runner.invoke(cli, ["server", "database", "reset"])
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    backend = LocalBackend(load_settings())
    try:
        assert backend.read_flow_run(run.id).id == run.id  # nothing was deleted
    finally:
        backend.close()

    done = runner.invoke(cli, ["server", "database", "reset", "--yes"])
    assert done.exit_code == 0, done.output
    backend = LocalBackend(load_settings())
    try:
        assert backend.list_flow_runs(FlowRunFilter()) == []
    finally:
        backend.close()


def test_database_upgrade(sluice_home: Path) -> None:
    result = runner.invoke(cli, ["server", "database", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert (sluice_home / "sluice.db").exists()


def test_crash_detection_service_marks_lapsed_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_HEARTBEAT_TIMEOUT", "30")
    run, write = flow_run(StateType.RUNNING)  # started long ago, never a heartbeat
    fresh, fresh_write = flow_run(StateType.RUNNING)
    # The store stamps a heartbeat with its own clock (now), whatever time it carries.
    beat = heartbeat(fresh.id, 0)
    with TestClient(
        create_app(load_settings(), crash_interval=0.05), base_url="http://127.0.0.1"
    ) as client:
        body = ingest_batch(flow_runs=[write, fresh_write], heartbeats=[beat])
        client.post("/api/ingest", json=payload(body))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if client.get(f"/api/flow_runs/{run.id}").json()["state_type"] == "CRASHED":
                break
            time.sleep(0.05)
        assert client.get(f"/api/flow_runs/{run.id}").json()["state_type"] == "CRASHED"
        assert client.get(f"/api/flow_runs/{fresh.id}").json()["state_type"] == "RUNNING"
        service = client.app.state.services[0]  # type: ignore[attr-defined]
        assert service.ticks >= 1


def test_periodic_service_survives_a_failing_step() -> None:
    from sluice.server.services.periodic import PeriodicService
    from sluice.store.locks import SingletonLock

    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database restarting")

    async def scenario() -> None:
        service = PeriodicService("test", step, 0.01, SingletonLock(None, "test"))
        assert await service.tick() is False
        assert await service.tick() is True
        service.start()
        await asyncio.sleep(0.1)
        await service.stop()

    asyncio.run(scenario())
    assert len(calls) >= 3
