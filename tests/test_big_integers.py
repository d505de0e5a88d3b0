"""One rule for integers beyond 64 bits, however a run is recorded.

A parameter (any free-form value the store keeps as JSON: parameters, state
details) may hold an integer of any size, as Python's do, and reads back
exactly; a record's integer *fields* (run counts, limits: database integers)
are refused past 64 bits. The embedded store always kept big parameters; a
server refused them (422), so in client mode the run's record was dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice import flow
from sluice.backend.factory import close_backends
from sluice.backend.local import LocalBackend
from sluice.deployments import run_deployment
from sluice.errors import ParameterValidationError
from sluice.schemas import DeploymentRecord
from sluice.settings import Settings
from tests import helpers
from tests.pg_databases import pg_database, postgresql_param
from tests.server_process import ServerProcess

BIG = 2**70 + 1
NESTED = {"seed": -(2**80), "sizes": [2**64, 1]}


@flow(name="big-ints")
def big_ints(x: int, nested: dict[str, object]) -> int:
    return x + 1


def _check_recorded() -> None:
    run = helpers.only_flow_run("big-ints")
    assert run.state_name == "Completed", run
    assert run.parameters == {"x": BIG, "nested": NESTED}
    assert type(run.parameters["x"]) is int


def test_embedded(sluice_home: Path) -> None:
    assert big_ints(BIG, NESTED) == BIG + 1
    _check_recorded()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_database("sluice_bigint") as url:
        yield url


@pytest.fixture(params=["sqlite", postgresql_param()])
def database_url(request: pytest.FixtureRequest) -> str:
    """The server's database: its home's SQLite file (""), or a PostgreSQL one."""
    return str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else ""


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server", env={"SLUICE_DATABASE_URL": database_url})
    process.start()
    yield process
    process.stop()


@pytest.mark.integration
def test_client_mode_through_a_real_server(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_API_URL", server.url)
    monkeypatch.setenv("SLUICE_STORE_FLUSH_INTERVAL", "0.05")
    try:
        assert big_ints(BIG, NESTED) == BIG + 1
        close_backends()  # delivered (or refused) by now
        _check_recorded()
    finally:
        close_backends()


def _deployment() -> DeploymentRecord:
    return DeploymentRecord(
        name="d", flow_name="big-ints", entrypoint="flows.py:big_ints", parameters={"x": 1}
    )


@pytest.mark.integration
def test_the_deployment_run_api(
    server: ServerProcess, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put("/api/deployments", json=_deployment_json()).status_code == 200
        # The record API, the UI's form and a PATCH of the defaults all take it.
        created = http.post("/api/deployments/big-ints/d/runs", json={"parameters": {"x": BIG}})
        assert created.status_code == 201, created.text
        assert created.json()["parameters"] == {"x": BIG}
        form = http.post("/api/ui/deployments/big-ints/d/runs", json={"parameters": {"x": BIG}})
        assert form.status_code == 201, form.text
        patched = http.patch("/api/deployments/big-ints/d", json={"parameters": NESTED})
        assert patched.status_code == 200, patched.text
        assert patched.json()["parameters"] == NESTED
        # A database integer past 64 bits is still refused, naming the field.
        refused = http.patch("/api/deployments/big-ints/d", json={"concurrency_limit": BIG})
        assert refused.status_code == 422
        refused = http.post("/api/work_pools", json={"name": "p", "concurrency_limit": BIG})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "concurrency_limit"]
    # run_deployment in client mode, and what the server's store holds.
    monkeypatch.setenv("SLUICE_API_URL", server.url)
    try:
        run = run_deployment("big-ints/d", parameters={"x": BIG}, timeout=0)
    finally:
        close_backends()
    store = LocalBackend(Settings(home=server.home, database_url=database_url))
    try:
        assert store.read_flow_run(run.id).parameters == {**NESTED, "x": BIG}
    finally:
        store.close()


def test_the_deployment_run_api_embedded(sluice_home: Path) -> None:
    backend = LocalBackend(Settings(home=sluice_home))
    try:
        backend.upsert_deployment(_deployment())
        run = backend.create_flow_run_from_deployment("big-ints/d", {"x": BIG})
        assert backend.read_flow_run(run.id).parameters == {"x": BIG}
        with pytest.raises((ValueError, ParameterValidationError)):
            backend.update_deployment("big-ints/d", {"concurrency_limit": BIG})
    finally:
        backend.close()


def _deployment_json() -> dict[str, object]:
    dep = _deployment()
    return {
        "name": dep.name,
        "flow_name": dep.flow_name,
        "entrypoint": dep.entrypoint,
        "parameters": dep.parameters,
    }
