"""``/docs`` works with an API key set: the schema loads, Authorize takes the key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sluice.server.app import create_app
from sluice.server.docs import ASSETS_PATH, SCHEME
from sluice.settings import Settings
from tests.chromium_pipe import ChromiumPage
from tests.server_process import ServerProcess

KEY = "s3cret"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(home=tmp_path, api_key=KEY)), base_url="http://127.0.0.1"
    ) as client:
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
    with TestClient(create_app(Settings(home=tmp_path)), base_url="http://127.0.0.1") as client:
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
#: the operation GET /api/flow_runs on the Swagger page, and its last answer's status
OPERATION = (
    "[...document.querySelectorAll('.opblock-get')]"
    ".find(e => e.querySelector('.opblock-summary-path')?.dataset.path === '/api/flow_runs')"
)
STATUS = (
    f"{OPERATION}?.querySelector('.live-responses-table tbody .response-col_status')?.textContent"
)


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium")
def test_in_a_browser_authorize_takes_the_key_and_try_it_out_sends_it(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", env={"SLUICE_API_KEY": KEY})
    server.start()
    assert CHROMIUM is not None
    page = ChromiumPage(CHROMIUM, tmp_path / "chromium-profile")
    try:
        page.goto(f"{server.url}/docs")
        # The page loaded the schema (no key needed for it) and lists the operations.
        assert page.wait_for("document.querySelectorAll('.opblock').length") >= 10
        assert not page.evaluate("document.body.innerText.includes('Failed to load')")
        page.click(f"{OPERATION}.querySelector('.opblock-summary-control')")
        page.click(f"{OPERATION}.querySelector('.try-out__btn')")
        page.click(f"{OPERATION}.querySelector('.execute')")
        assert page.wait_for(STATUS).startswith("401")  # no key yet
        # Authorize: the dialog takes the key, as a person would type it.
        page.click("document.querySelector('.btn.authorize')")
        page.click("document.querySelector('.modal-ux input')")
        page.type_text(KEY)
        page.click("document.querySelector('.modal-ux .auth-btn-wrapper .authorize')")
        page.click("document.querySelector('.modal-ux .btn-done')")
        page.click(f"{OPERATION}.querySelector('.btn-clear')")
        page.wait_for(f"!{OPERATION}.querySelector('.live-responses-table')")
        page.click(f"{OPERATION}.querySelector('.execute')")
        assert page.wait_for(STATUS).strip() == "200"
        curl = page.evaluate(f"{OPERATION}.querySelector('.curl').innerText")
        assert f"Authorization: Bearer {KEY}" in curl
    finally:
        page.close()
        server.stop()
