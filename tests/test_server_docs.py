"""``/docs`` works with an API key set: the schema loads, Authorize takes the key."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sluice.server.app import create_app
from sluice.server.docs import ASSETS_PATH, SCHEME
from sluice.settings import Settings
from tests.server_process import ServerProcess

KEY = "s3cret"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(home=tmp_path, api_key=KEY))) as client:
        yield client


def test_the_schema_is_served_without_the_key_and_declares_bearer_auth(
    keyed: TestClient,
) -> None:
    response = keyed.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"][SCHEME] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The server's API key (SLUICE_API_KEY)",
    }
    assert schema["security"] == [{SCHEME: []}]
    assert schema["paths"]["/api/health"]["get"]["security"] == []  # open for probes
    assert "security" not in schema["paths"]["/api/flow_runs"]["get"]  # the global one
    # Everything else still needs the key.
    assert keyed.get("/api/flow_runs").status_code == 401
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert keyed.get("/api/flow_runs", headers=bearer).status_code == 200


def test_without_a_key_the_schema_declares_no_auth(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(home=tmp_path))) as client:
        schema = client.get("/api/openapi.json").json()
    assert "security" not in schema
    assert "securitySchemes" not in schema.get("components", {})


def test_the_swagger_page_and_its_files_come_from_this_server(keyed: TestClient) -> None:
    page = keyed.get("/docs")
    assert page.status_code == 200
    assert f'"{ASSETS_PATH}/swagger-ui-bundle.js"' in page.text
    assert "/api/openapi.json" in page.text
    assert "cdn." not in page.text
    script = keyed.get(f"{ASSETS_PATH}/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert keyed.get(f"{ASSETS_PATH}/swagger-ui.css").status_code == 200


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium")
def test_a_browser_renders_the_docs_of_a_keyed_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", env={"SLUICE_API_KEY": KEY})
    server.start()
    try:
        assert CHROMIUM is not None
        # The DOM after Swagger UI's script ran and fetched the schema.
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000",
             f"{server.url}/docs"],
            capture_output=True, text=True, timeout=90, check=True,
        ).stdout  # fmt: skip
    finally:
        server.stop()
    assert "Failed to load API definition" not in dom
    assert 'data-path="/api/flow_runs"' in dom  # the operations are listed
    assert "btn authorize" in dom  # and the Authorize button asks for the key
